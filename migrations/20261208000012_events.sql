-- Outbound events (an outbox): written in the transaction of the change they describe, so an
-- event exists if and only if its change committed, and delivered from here by one replica at
-- a time as Standard Webhooks. (Expand only: new tables.)
CREATE TABLE events (
    -- The order events were made in; delivery follows it within each ordering key.
    seq             bigserial   NOT NULL,
    -- The `webhook-id` of every attempt (receivers drop duplicates by it).
    id              text        NOT NULL,
    type            text        NOT NULL,
    -- The instance the event is about; '' for fleet-wide events (reconcile.failed). Events of
    -- one key are delivered one after another, in `seq` order.
    ordering_key    text        NOT NULL,
    -- The body delivered: {"type", "timestamp", "data"}.
    payload         jsonb       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    -- pending: to be delivered (again); delivered: a 2xx answer came; failed: every attempt of
    -- the retry schedule failed (POST /v1/events/{id}/redeliver makes it pending again).
    status          text        NOT NULL DEFAULT 'pending',
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    CONSTRAINT events_pkey PRIMARY KEY (seq),
    CONSTRAINT events_id_key UNIQUE (id),
    CONSTRAINT events_status_check CHECK (status IN ('pending', 'delivered', 'failed'))
);

-- The deliverer's question: the oldest pending event of each key.
CREATE INDEX events_pending_idx ON events (ordering_key, seq) WHERE status = 'pending';
CREATE INDEX events_type_idx ON events (type, seq);
CREATE INDEX events_key_idx ON events (ordering_key, seq);

-- Every delivery attempt: when, and what came back (a status code, or why none did).
CREATE TABLE event_attempts (
    event_seq   bigint      NOT NULL,
    attempt     integer     NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    status_code integer,
    error       text,
    duration_ms integer     NOT NULL,
    CONSTRAINT event_attempts_pkey PRIMARY KEY (event_seq, attempt),
    CONSTRAINT event_attempts_event_seq_fkey FOREIGN KEY (event_seq) REFERENCES events (seq) ON DELETE CASCADE
);

-- What the platform was last told about each instance's login, so that
-- `instance.login_ready` is sent once per set of hosts and `instance.login_failing` once per
-- failure streak.
CREATE TABLE instance_login_events (
    instance_id text    NOT NULL,
    -- The hosts last announced ready (sorted), or NULL.
    ready_hosts text[],
    failing     boolean NOT NULL DEFAULT false,
    CONSTRAINT instance_login_events_pkey PRIMARY KEY (instance_id),
    CONSTRAINT instance_login_events_instance_id_fkey FOREIGN KEY (instance_id) REFERENCES instances (id) ON DELETE CASCADE
);
