-- What fleetgate has put on each application's allow-lists ("owned" entries: the only ones it
-- may remove), the lists as last read back, and the history of reconcile passes.

CREATE TABLE allowlist_entries (
    client_id  TEXT        NOT NULL,
    field      TEXT        NOT NULL,
    entry      TEXT        NOT NULL,
    added_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT allowlist_entries_pkey PRIMARY KEY (client_id, field, entry),
    CONSTRAINT allowlist_entries_field_check
        CHECK (field IN ('callbacks', 'allowed_logout_urls', 'web_origins', 'allowed_origins'))
);

CREATE TABLE allowlist_snapshots (
    client_id  TEXT        NOT NULL,
    field      TEXT        NOT NULL,
    entries    JSONB       NOT NULL,
    read_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT allowlist_snapshots_pkey PRIMARY KEY (client_id, field),
    CONSTRAINT allowlist_snapshots_field_check
        CHECK (field IN ('callbacks', 'allowed_logout_urls', 'web_origins', 'allowed_origins'))
);

CREATE TABLE reconcile_runs (
    id           BIGINT      GENERATED ALWAYS AS IDENTITY,
    trigger      TEXT        NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at  TIMESTAMPTZ,
    outcome      TEXT        NOT NULL DEFAULT 'running',
    api_calls    INTEGER     NOT NULL DEFAULT 0,
    changes      JSONB       NOT NULL DEFAULT '[]',
    error        TEXT,
    CONSTRAINT reconcile_runs_pkey PRIMARY KEY (id),
    CONSTRAINT reconcile_runs_trigger_check CHECK (trigger IN ('notify', 'cron', 'manual', 'startup', 'repair')),
    CONSTRAINT reconcile_runs_outcome_check CHECK (outcome IN ('running', 'applied', 'unchanged', 'failed'))
);

-- Every committed change to the registry wakes the reconciler.
CREATE FUNCTION fleetgate_notify_registry() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('fleetgate_registry', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER instances_notify_registry AFTER INSERT OR UPDATE OR DELETE ON instances
    FOR EACH STATEMENT EXECUTE FUNCTION fleetgate_notify_registry();
CREATE TRIGGER domains_notify_registry AFTER INSERT OR UPDATE OR DELETE ON domains
    FOR EACH STATEMENT EXECUTE FUNCTION fleetgate_notify_registry();
