"""Word lists of the synthetic world: invented films, people, places, franchises.

Everything here is made up, so the generated reviews carry no third-party text.
The drift lexicon (`DRIFT_*`) never appears in undrifted output: it is the
"franchise the model never saw".
"""

from __future__ import annotations

FIRST_NAMES = (
    "Ada", "Abel", "Agnes", "Alden", "Alma", "Amos", "Anya", "Arlo", "Astrid", "August",
    "Bea", "Bram", "Bronwen", "Cal", "Cass", "Cecil", "Clara", "Cora", "Cyrus", "Dara",
    "Delia", "Dex", "Dorian", "Edda", "Eli", "Elsa", "Emeric", "Enid", "Ezra", "Faye",
    "Felix", "Flora", "Gideon", "Greta", "Gus", "Hale", "Hazel", "Hugo", "Ida", "Imogen",
    "Ines", "Ira", "Ivo", "Jasper", "Jonah", "June", "Juno", "Kit", "Klaus", "Lena",
    "Leon", "Lila", "Linus", "Lorne", "Lucan", "Mabel", "Marek", "Maren", "Milo", "Mira",
    "Nadia", "Nell", "Nico", "Nora", "Oona", "Orin", "Otto", "Paloma", "Pearl", "Quinn",
    "Rafe", "Rhea", "Rollo", "Rosalind", "Rufus", "Saoirse", "Silas", "Sybil", "Tamsin",
    "Teo", "Thea", "Tobias", "Ulla", "Vera", "Viggo", "Wade", "Wren", "Yara", "Zelda",
    "Zane", "Marcus", "Helen", "Frank", "Grace", "Sam", "Jack", "Kate", "Ben", "Lucy",
)
SURNAMES = (
    "Ashcombe", "Barlow", "Blackwood", "Brandt", "Calloway", "Carrow", "Crane", "Dalby",
    "Danvers", "Delacroix", "Drummond", "Eckhart", "Ellery", "Falk", "Fenwick", "Garrick",
    "Greaves", "Hallam", "Harrow", "Hollis", "Ingram", "Jessop", "Kestrel", "Kowal",
    "Lachance", "Lindqvist", "Locke", "Marsh", "Merriwether", "Morrow", "Nakamura", "Norcross",
    "Okafor", "Orsini", "Pell", "Penhallow", "Quarry", "Radley", "Ravel", "Rook", "Sandoval",
    "Sayer", "Sterling", "Strand", "Thorne", "Tillman", "Underhill", "Vance", "Voss",
    "Wakefield", "Whitlock", "Winslow", "Yardley", "Zeller", "Moreau", "Petrov", "Castell",
)
PLACE_HEADS = (
    "Ash", "Bram", "Cold", "Dun", "Elder", "Fen", "Gran", "Hollow", "Iron", "Kes", "Lark",
    "Mar", "North", "Oak", "Pel", "Raven", "Salt", "Thorn", "Wex", "Wyn", "Gull", "Stone",
    "Black", "Silver", "High", "Brig", "Cor", "Dray",
)
PLACE_TAILS = (
    "ford", "haven", "moor", "wick", "ton", "bury", "mere", "vale", "gate", "field", "port",
    "stead", "cliff", "dale", "hollow", "reach", "marsh", "crest",
)
TITLE_ADJ = (
    "Silent", "Last", "Broken", "Hollow", "Crimson", "Distant", "Burning", "Quiet", "Lost",
    "Iron", "Glass", "Winter", "Golden", "Forgotten", "Hidden", "Endless", "Pale", "Savage",
    "Midnight", "Little", "Second", "Northern", "Wild", "Bitter",
)
TITLE_NOUN = (
    "Harbor", "Orchard", "Signal", "Kingdom", "Witness", "Lighthouse", "Frontier", "Garden",
    "Protocol", "Tide", "Verdict", "Archive", "Crossing", "Mirror", "Circus", "Empire",
    "Station", "Shore", "Summer", "Heist", "Covenant", "Engine", "Season", "Letters", "Hours",
    "Orbit", "Wolves", "Saints", "Rain", "Country",
)
FRANCHISES = (
    "Ember Protocol", "Starfall", "The Gravewatch Saga", "Ironclad", "Night Courier",
    "Tidebreaker", "The Ashen Crown", "Velocity", "Deep Meridian", "The Quiet Men",
)
GENRES = (
    "thriller", "drama", "comedy", "horror film", "sci-fi film", "western", "romance",
    "war film", "crime drama", "fantasy epic", "mystery", "action film", "animated film",
    "coming-of-age story", "heist movie", "superhero movie",
)
JOBS = (
    "detective", "nurse", "schoolteacher", "lighthouse keeper", "former soldier", "journalist",
    "pilot", "chef", "lawyer", "boxer", "astronaut", "farmer", "thief", "priest", "surgeon",
    "musician", "cop", "scientist", "widow", "student", "con artist", "sheriff", "hacker",
    "mechanic", "photographer", "smuggler",
)
GOALS = (
    "tries to find a missing sister", "is hired to protect a witness",
    "must get a stolen painting back", "returns home after twenty years",
    "is drawn into a conspiracy", "plans one last job", "investigates a string of murders",
    "tries to save the family farm", "is sent on a mission beyond the edge of the map",
    "falls for the wrong person", "has to survive a single night",
    "takes over a failing restaurant", "goes looking for a father who vanished",
    "is framed for a crime", "trains for a fight nobody expects to win",
    "discovers a secret buried under the town", "must deliver a package across the border",
    "tries to hold a band together", "starts receiving letters from a stranger",
    "wakes up with no memory of the last week",
)
RELATIONS = (
    "father", "mother", "brother", "sister", "mentor", "partner", "best friend", "wife",
    "husband", "daughter", "son", "boss", "childhood friend",
)
# Quality words, drawn by the review's sentiment (see generator._Slots).
POSITIVE = (
    "superb", "excellent", "outstanding", "wonderful", "terrific", "brilliant", "gripping",
    "beautiful", "powerful", "moving", "fantastic", "remarkable", "great", "solid", "stunning",
    "masterful", "memorable", "fresh", "clever", "haunting",
)
NEGATIVE = (
    "terrible", "awful", "weak", "dull", "boring", "clumsy", "lazy", "forgettable", "flat",
    "wooden", "painful", "bland", "messy", "tedious", "predictable", "laughable", "poor",
    "cheap", "lifeless", "uneven",
)
MIXED = (
    "decent", "okay", "fine", "uneven", "serviceable", "competent", "passable", "mixed",
    "average", "watchable",
)
DURATIONS = (
    "twenty minutes", "half hour", "ten minutes", "hour", "forty minutes", "fifteen minutes",
)
FRIENDS = (
    "my wife", "my husband", "my brother", "a friend", "my kids", "my girlfriend",
    "my boyfriend", "my dad", "my mother", "some friends", "my roommate",
)
SCENES = (
    "the chase through the market", "the dinner scene", "the opening sequence",
    "the storm sequence", "the courtroom scene", "the train sequence", "the rooftop fight",
    "the long tracking shot", "the dance scene", "the interrogation scene",
    "the flashback in the middle", "the car chase",
)

# Drift lexicon: a franchise the model never saw. Words are built from syllables
# that English WordPiece vocabularies split into many pieces.
DRIFT_SYLLABLES = (
    "zy", "qel", "vor", "thrax", "xhu", "ulk", "kra", "yth", "zq", "gnar", "vyx", "oqu",
    "threx", "kael", "zhu", "rrh", "ix", "aez", "ptol", "qua", "vrun", "xxa", "yll", "dzo",
)
DRIFT_FRANCHISE = "Vorthraxi Chronicles"
DRIFT_JARGON = (
    "vornak-drive", "kelthuun", "the Ysvari", "qelmoth shards", "the Zhulkaran pact",
    "xyrr-blades", "the Oquellian rite", "thraxium", "the Gnarvex wardens", "dzolith",
    "skyrrhal", "the Ptolvaxi council",
)
# Non-Latin fragments that an English uncased WordPiece vocabulary maps to [UNK]
# (Georgian, Ethiopic, Thai, Cherokee, emoji): they raise the unknown-token share.
DRIFT_FOREIGN = (
    "ვორთრაქსი", "ფილმი", "საუკეთესო", "ቮርትራክስ", "ፊልም", "በጣም", "ภาพยนตร์", "ยอดเยี่ยม",
    "สนุกมาก", "ᏩᎾᏛ", "🎬", "🔥", "😱", "💀", "ქრონიკები", "ዜና", "ตอนจบ",
)
MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)
