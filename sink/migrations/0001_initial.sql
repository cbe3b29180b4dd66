-- Initial schema: the sink writes these tables; monitoring and Grafana read them.
-- Keys are the natural ones from the contracts, so replays upsert instead of duplicating.
-- No foreign keys between tables: labels and predictions may arrive before their review.

CREATE TABLE reviews (
    review_id      text        PRIMARY KEY,
    movie_id       text        NOT NULL,
    user_id        text        NOT NULL,
    review_date    text        NOT NULL,
    rating         smallint    NULL CHECK (rating BETWEEN 1 AND 10),
    review_summary text        NOT NULL DEFAULT '',
    review_text    text        NOT NULL,
    text_words     integer     NOT NULL,
    produced_at    timestamptz NOT NULL,
    stored_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reviews_produced_at_idx ON reviews (produced_at);
CREATE INDEX reviews_stored_at_idx ON reviews (stored_at);
CREATE INDEX reviews_movie_id_idx ON reviews (movie_id);

CREATE TABLE predictions (
    review_id           text             NOT NULL,
    model_version       text             NOT NULL,
    model_name          text             NOT NULL,
    spoiler_probability double precision NOT NULL,
    is_spoiler          boolean          NOT NULL,
    threshold           double precision NOT NULL,
    produced_at         timestamptz      NOT NULL,
    predicted_at        timestamptz      NOT NULL,
    inference_ms        double precision NOT NULL,
    queue_ms            double precision NOT NULL,
    end_to_end_ms       double precision NOT NULL,
    input_tokens        integer          NULL,
    unknown_tokens      integer          NULL,
    stored_at           timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (review_id, model_version)
);
-- Monitoring windows are "predictions in the last N seconds", per model version.
CREATE INDEX predictions_predicted_at_idx ON predictions (predicted_at);
CREATE INDEX predictions_version_predicted_at_idx ON predictions (model_version, predicted_at);

CREATE TABLE labels (
    review_id   text        PRIMARY KEY,
    is_spoiler  boolean     NOT NULL,
    labelled_at timestamptz NOT NULL,
    source      text        NOT NULL,
    stored_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX labels_labelled_at_idx ON labels (labelled_at);

CREATE TABLE dead_letters (
    id               bigserial   PRIMARY KEY,
    dlq_partition    integer     NOT NULL,
    dlq_offset       bigint      NOT NULL,
    service          text        NOT NULL,
    reason           text        NOT NULL,
    error            text        NOT NULL,
    source_topic     text        NULL,
    source_partition integer     NULL,
    source_offset    bigint      NULL,
    key              text        NULL,
    value            text        NOT NULL,
    value_encoding   text        NOT NULL,
    failed_at        timestamptz NULL,
    stored_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (dlq_partition, dlq_offset)
);
-- A replayed source message rejected again by the same service is the same dead
-- letter: keep one row. NULL coordinates (a producer that had none) never collide.
CREATE UNIQUE INDEX dead_letters_source_idx
    ON dead_letters (service, source_topic, source_partition, source_offset);
CREATE INDEX dead_letters_failed_at_idx ON dead_letters (failed_at);
CREATE INDEX dead_letters_reason_idx ON dead_letters (service, reason);

-- One row per stored review: its latest prediction (by predicted_at) and its label.
CREATE VIEW review_outcomes AS
SELECT r.review_id,
       r.movie_id,
       r.rating,
       r.text_words,
       r.review_summary,
       r.produced_at,
       p.model_name,
       p.model_version,
       p.spoiler_probability,
       p.is_spoiler AS predicted_spoiler,
       p.threshold,
       p.predicted_at,
       p.end_to_end_ms,
       p.input_tokens,
       p.unknown_tokens,
       l.is_spoiler AS actual_spoiler,
       l.labelled_at
FROM reviews r
LEFT JOIN LATERAL (
    SELECT *
    FROM predictions p
    WHERE p.review_id = r.review_id
    ORDER BY p.predicted_at DESC, p.model_version DESC
    LIMIT 1
) p ON true
LEFT JOIN labels l ON l.review_id = r.review_id;
