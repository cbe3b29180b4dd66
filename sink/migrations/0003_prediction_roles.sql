-- Shadow scoring (issue 15): a review may have the champion's prediction (the product)
-- and a challenger's, under their own model_version. Rows written before this
-- migration are all the served model's, hence the default.
ALTER TABLE predictions ADD COLUMN role text NOT NULL DEFAULT 'champion'
    CHECK (role IN ('champion', 'challenger'));
-- The online comparison reads "challenger rows of the window" and joins the champion's.
CREATE INDEX predictions_role_predicted_at_idx ON predictions (role, predicted_at);

-- review_outcomes keeps showing the product: the champion's latest prediction only.
-- (Same columns as before, so dashboards and queries reading it are unchanged.)
CREATE OR REPLACE VIEW review_outcomes AS
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
    WHERE p.review_id = r.review_id AND p.role = 'champion'
    ORDER BY p.predicted_at DESC, p.model_version DESC
    LIMIT 1
) p ON true
LEFT JOIN labels l ON l.review_id = r.review_id;
