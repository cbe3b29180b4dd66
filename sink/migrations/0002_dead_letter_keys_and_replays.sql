-- Dead letters keep keys that are not UTF-8 (or hold NUL) as base64, like values,
-- and remember when `spoiler-dead-letters replay` re-published them.
ALTER TABLE dead_letters ADD COLUMN key_encoding text NOT NULL DEFAULT 'utf-8';
ALTER TABLE dead_letters ADD COLUMN replayed_at timestamptz NULL;
CREATE INDEX dead_letters_source_coordinates_idx
    ON dead_letters (source_topic, source_partition, source_offset);
