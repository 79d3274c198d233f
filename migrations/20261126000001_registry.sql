-- The registry: instances, their domains, the audit log and processed webhook ids.
-- Every constraint is named so that the code can translate a violation into an answer.

CREATE TABLE instances (
    id          TEXT        NOT NULL,
    owner       TEXT        NOT NULL,
    status      TEXT        NOT NULL DEFAULT 'active',
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT instances_pkey PRIMARY KEY (id),
    CONSTRAINT instances_id_format CHECK (id ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    CONSTRAINT instances_owner_format CHECK (owner ~ '^[^|]+\|.+$' AND length(owner) <= 255),
    CONSTRAINT instances_status_check CHECK (status IN ('active', 'suspended', 'deleted'))
);

CREATE INDEX instances_owner_idx ON instances (owner);
CREATE INDEX instances_status_idx ON instances (status, id);

-- One host belongs to at most one instance: the host itself is the key.
CREATE TABLE domains (
    hostname     TEXT        NOT NULL,
    instance_id  TEXT        NOT NULL,
    kind         TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT domains_hostname_key PRIMARY KEY (hostname),
    CONSTRAINT domains_instance_id_fkey FOREIGN KEY (instance_id) REFERENCES instances (id),
    CONSTRAINT domains_kind_check CHECK (kind IN ('platform', 'custom')),
    CONSTRAINT domains_hostname_format CHECK (hostname = lower(hostname) AND length(hostname) <= 253)
);

CREATE INDEX domains_instance_id_idx ON domains (instance_id);

CREATE TABLE audit_log (
    id           BIGINT      GENERATED ALWAYS AS IDENTITY,
    at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor        TEXT        NOT NULL,
    action       TEXT        NOT NULL,
    target_type  TEXT        NOT NULL,
    target_id    TEXT        NOT NULL,
    before       JSONB,
    after        JSONB,
    request_id   TEXT,
    CONSTRAINT audit_log_pkey PRIMARY KEY (id)
);

CREATE INDEX audit_log_target_idx ON audit_log (target_type, target_id, id);

-- Deliveries of the platform's deploy hook that were acknowledged, with the answer given,
-- so that a redelivery has no second effect and gets the same answer.
CREATE TABLE webhook_deliveries (
    webhook_id     TEXT        NOT NULL,
    event_type     TEXT        NOT NULL,
    response_status SMALLINT   NOT NULL,
    response_body  JSONB       NOT NULL,
    received_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT webhook_deliveries_pkey PRIMARY KEY (webhook_id)
);

CREATE INDEX webhook_deliveries_received_at_idx ON webhook_deliveries (received_at);
