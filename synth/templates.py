"""Sentence templates of synthetic reviews, by what the sentence does.

Slots are filled per review (`T` title, `A` hero's full name, `a` hero's first
name, `B`/`C` other characters, `V` the villain, `P` a place, `L`/`L2` actors,
`D` the director, `G` genre, `J` the hero's job, `goal`, `R` a relation) `r` the rating) or
drawn per use (`q` a quality word that follows the review's sentiment, `aq`/`Aq`
the same with its article, `pos`,
`neg`, `mid`, `dur`, `friend`, `scene`, `rel`, `n`, `x` drift jargon, `w`
a non-Latin fragment). See generator._Slots.

Why the categories overlap on purpose: premise and tease sentences talk about the
plot (deaths that happen in the first act, "a twist I won't give away") without
spoiling, and subtle spoilers reveal without the obvious words, so no single
keyword separates the classes.
"""

from __future__ import annotations

OPENERS = (
    "I watched {T} last night with {friend}.",
    "I went into {T} knowing almost nothing about it.",
    "{T} is {aq} {G}.",
    "I had high hopes for {T}.",
    "I finally got around to seeing {T}.",
    "What {aq} film {T} is.",
    "{T} is not the movie the trailer sells.",
    "I saw {T} at a festival screening and have been thinking about it since.",
    "This is the {n} time I have watched {T}.",
    "{D} is back with {T}, a {G} set in {P}.",
    "Where do I start with {T}?",
    "I am a big fan of {L}, which is the only reason I watched {T}.",
    "Let me start by saying that I rarely write reviews.",
    "{T} is one of those films that divides people, and I can see why.",
    "After all the hype I expected a lot from {T}.",
    "I caught {T} on a flight and did not expect much.",
)
PREMISE = (
    "The film follows {A}, a {J} in {P} who {goal}.",
    "{A} ({L}) is a {J} who {goal}.",
    "The story is set in {P}, where {a} {goal}.",
    "The setup is simple: {a}, a {J}, {goal}, with help from {B}.",
    "{L} plays {a}, a {J} whose {R} {C} has just come back to {P}.",
    "At the start of the film {a}'s {R} dies in an accident, and {a} moves to {P}.",
    "The plot centres on {a} and {B}, two strangers stuck in {P} for a winter.",
    "{a} {goal} while {V}, a local businessman, watches from a distance.",
    "Early on we learn that {a} owes money to {V}, which drives most of the first act.",
    "The first half hour introduces {a}, {B} and {C} and the town of {P}.",
    "Without giving anything away, the film is about {a} trying to keep a promise to {B}.",
    "{B} hires {a} to find out who has been stealing from the mill in {P}.",
    "It is the {n} film about {a}, and this time the story moves to {P}.",
    "The film opens with a robbery in {P}, and {a} is the first one on the scene.",
    "{a} has a secret, and the film takes its time letting us see how heavy it is.",
    "The relationship between {a} and {B} is the heart of the story.",
    "{V} is introduced as a rival, and the two of them circle each other for most of the film.",
    "Most of the movie takes place over one weekend in {P}.",
    "There is a subplot about {C} and a missing boat that I found {q}.",
    "{a} is haunted by what happened in the war, which we see in flashbacks.",
)
ACTING = (
    "{L} is {q} as {a}.",
    "The acting is {q} across the board, especially {L2} as {B}.",
    "{L} gives {aq} performance, maybe the best of their career.",
    "{L2} steals every scene as {V}.",
    "The chemistry between {L} and {L2} is {q}.",
    "I thought {L} was {q}, but the supporting cast is even better.",
    "The child actors are {q}, which is rare.",
    "{L2} plays {V} with {aq} mix of charm and menace.",
    "The cast does what it can with {q} material.",
    "{L} seems to be having fun, and it shows.",
    "Every performance here feels {q}, down to the smallest role.",
    "The casting of {L2} as {B} was {aq} choice.",
)
CRAFT = (
    "The cinematography is {q}, with long shots of the coast around {P}.",
    "The score is {q}; the main theme has been stuck in my head all day.",
    "The pacing is {q}: the first act drags, but the middle flies by.",
    "The editing is {q}, and {scene} is a highlight.",
    "{D}'s direction is {q}.",
    "The script is {q}, with some very sharp dialogue.",
    "The visual effects are {q} for a film of this budget.",
    "The music does a lot of the heavy lifting, and it is {q}.",
    "The production design makes {P} feel like a real place.",
    "At two and a half hours it is too long, and the middle sags.",
    "The sound design is {q}, especially in {scene}.",
    "The dialogue is {q} and often very funny.",
    "The colour palette is cold and grey, which suits the story.",
    "For me, {scene} is one of the most {q} sequences I have seen this year.",
    "The world building is {q}, and {P} feels lived in.",
    "The tone is all over the place, moving from comedy to tragedy without warning.",
    "The running time flies by.",
    "The camera work in {scene} is {q}.",
)
OPINION = (
    "Overall it is {aq} film.",
    "I would recommend it to anyone who likes a good {G}.",
    "It is not perfect, but it is {q}.",
    "Honestly I found it {q} from start to finish.",
    "It is the kind of film that stays with you.",
    "I do not understand the bad reviews.",
    "I do not understand the good reviews.",
    "It is {q} entertainment, nothing more and nothing less.",
    "Fans of {D} will know what to expect.",
    "The friend I went with loved it more than I did.",
    "I laughed, I cried, and I checked my watch only once.",
    "It tries to do too much and ends up doing nothing well.",
    "This one deserves a bigger audience.",
    "Compared to the first film, this one is {q}.",
    "The film has a lot to say about family and grief.",
    "It borrows a lot from older films, but it does it well.",
    "There are problems, but the good outweighs the bad.",
    "It is {aq} {G}, and that is all it needs to be.",
    "I will be thinking about this one for a while.",
    "It is {aq} way to spend an evening.",
)
CLOSERS = (
    "{r} out of ten.",
    "{r}/10.",
    "Go see it.",
    "Skip it.",
    "Worth a watch.",
    "Highly recommended.",
    "Not recommended.",
    "Wait for it to come out on streaming.",
    "See it on the biggest screen you can.",
    "I will definitely watch it again.",
    "I will not be watching it again.",
    "Overall, {q}.",
)
# Plot talk that does not spoil: the confounders.
TEASE = (
    "I won't spoil the ending, but it is {q}.",
    "There is a twist, and I will not give it away.",
    "No spoilers here, but pay attention to {B} in the first act.",
    "The ending divided the audience in my screening.",
    "Without spoiling anything, the last {dur} are intense.",
    "You will probably guess who is behind it all, but the ride is fun.",
    "The final act is where the film either wins you or loses you.",
    "I did not see the ending coming, and I will leave it at that.",
    "Someone dies, of course, it is that kind of film.",
    "The big reveal is handled {q}, no more than that from me.",
    "The death of {a}'s {R} in the opening scene sets everything in motion.",
    "I will not say what happens to {B}, you have to see it.",
)
WARNINGS = (
    "SPOILERS AHEAD.",
    "Warning: spoilers below!",
    "(Spoilers)",
    "Spoiler alert.",
    "Minor spoilers follow.",
    "If you have not seen it yet, stop reading now.",
)
# Spoilers that say it plainly: deaths, identities, endings, twists.
SPOILER_EXPLICIT = (
    "In the final scene {a} dies in {B}'s arms.",
    "It turns out {B} is {a}'s {rel}, which explains everything.",
    "The twist is that {V} was dead the whole time.",
    "{C} was the killer all along.",
    "At the end {a} shoots {V} on the pier and walks away.",
    "{B} betrays {a} in the last act and takes the money.",
    "The ending reveals that the whole story was a dream {a} had in hospital.",
    "When {V} turns out to be {a}'s {rel}, the film falls apart.",
    "{a} sacrifices himself to save {P} at the end.",
    "{B} dies halfway through, which I did not see coming.",
    "The last scene shows {a} alive, so the funeral was faked.",
    "It is revealed that {C} has been working for {V} from the start.",
    "In the end {a} and {B} do not end up together; {B} marries {C}.",
    "The big twist: {a} is the one who started the fire.",
    "{V} kills {C} in the final fight, and {a} is left alone.",
    "They reveal at the end that {a} was {V} all along, two sides of the same man.",
    "The film ends with {a} in prison for a crime {B} committed.",
    "So {B} was the informant, and {a} finds out only after {C} is dead.",
    "Turns out the letters were written by {a}'s dead {rel}.",
    "{a} dies in the explosion, and the last shot is of {B} at the grave.",
    "The ending where {V} escapes and {a} is killed made me furious.",
    "It turns out the town of {P} never existed and {a} made it up.",
)
# Spoilers that reveal without the obvious words.
SPOILER_SUBTLE = (
    "I did not expect what happened to {B} in the last {dur}.",
    "After the scene at the hospital, nothing about {C} looks the same.",
    "Once you know who sent the letters, the first act plays completely differently.",
    "{a}'s last scene with {B} is heartbreaking, given that they never see each other again.",
    "The empty chair at the dinner table in the final shot says it all.",
    "Knowing what {V} really is makes the second viewing a different film.",
    "The wedding that closes the film is not the one you expect.",
    "I still cannot believe they wrote {B} out like that.",
    "{C}'s confession in the church changes everything.",
    "The funeral at the end hit me harder than anything else this year.",
    "The moment {a} recognises the voice on the phone is the best scene of the film.",
    "Poor {B}, they deserved better than that last scene.",
    "Pay attention to the ring; it tells you who {V} really is.",
    "Seeing {a} walk out of {P} alone was the right way to end it.",
)
SPOILER_SUMMARIES = (
    "Why did {B} have to die?",
    "{C} did it",
    "The twist ruins it",
    "{a} deserved a better ending",
    "So {V} was the {rel}?",
)
SUMMARIES = (
    "{Aq} {G}",
    "{q} and {q}",
    "{T} is {q}",
    "Not what I expected",
    "One of the best of the year",
    "What a waste of talent",
    "{L} is {q}",
    "Better than the first one",
    "Caper by numbers",
    "A slow burn that pays off",
    "Two hours I will never get back",
    "{q}, just {q}",
    "Finally, a {G} for grown-ups",
    "Don't believe the hype",
    "{Aq} return to {P}",
    "Worth it for the ending alone",
    "{D} does it again",
    "Overrated",
    "Underrated gem",
    "Solid but forgettable",
)
# The unseen franchise: sentences that carry its invented jargon and scripts.
DRIFT = (
    "The {x} sequence in {T} is {q}.",
    "{a} has to master {x} before {V} reaches the {x}.",
    "Fans of the {F} will recognise {x} from the books.",
    "The subtitles call it {w} {w}, and the film never explains it.",
    "When {a} activates {x}, the whole theatre went quiet.",
    "{B} and {x} are the best part of the {F} so far.",
    "The title in the original release is {w} {w}.",
    "My friends kept posting {w} {w} during the premiere.",
    "I had to look up what {x} means after the film.",
)
