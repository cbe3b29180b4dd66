-- Promotions and rollbacks of the served model (`python -m training promote|rollback`,
-- and the autopilot): the dashboards' annotations and the audit trail read this table.
-- Numbered 0004 so that issue 15's prediction-role migration can be 0003.
CREATE TABLE model_promotions (
    id                    bigserial   PRIMARY KEY,
    happened_at           timestamptz NOT NULL DEFAULT now(),
    action                text        NOT NULL CHECK (action IN ('promote', 'rollback')),
    from_version          text        NULL,
    to_version            text        NOT NULL,
    registered_model      text        NULL,
    from_registry_version text        NULL,
    to_registry_version   text        NULL,
    reason                text        NOT NULL DEFAULT '',
    actor                 text        NOT NULL DEFAULT ''
);
CREATE INDEX model_promotions_happened_at_idx ON model_promotions (happened_at);
