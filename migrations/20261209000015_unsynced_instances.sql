-- What the last pass left out of step: the instances whose URLs were not live as wanted when it
-- ended, with each such URL and why. Each pass replaces the set in the transaction that records
-- it; `GET /v1/reconcile/status` reads it instead of working every instance out again.
-- Expand only (a new table).

CREATE TABLE unsynced_instances (
    instance_id  TEXT   NOT NULL,
    status       TEXT   NOT NULL,
    client_id    TEXT,
    urls         JSONB  NOT NULL,
    run_id       BIGINT NOT NULL,
    CONSTRAINT unsynced_instances_pkey PRIMARY KEY (instance_id)
);
