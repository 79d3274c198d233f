-- Grants (who may log in to which instance), their per-instance revision and change log,
-- and instance keys. See "Grants rules" in DESIGN.md.

-- The revision of an instance's grants, in a table of its own (so that grant changes do not
-- wake the reconciler). Every change upserts this row (locking it) in the transaction that
-- writes the change log, so revisions are gap-free and commit-ordered. `log_floor` is the
-- oldest revision R for which the log still holds every change after R (older ones were
-- pruned). An instance without a row is at revision 0 with nothing pruned.
CREATE TABLE grant_revisions (
    instance_id  TEXT   NOT NULL,
    revision     BIGINT NOT NULL,
    log_floor    BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT grant_revisions_pkey PRIMARY KEY (instance_id),
    CONSTRAINT grant_revisions_instance_id_fkey FOREIGN KEY (instance_id) REFERENCES instances (id),
    CONSTRAINT grant_revisions_log_floor_check CHECK (log_floor BETWEEN 0 AND revision)
);

-- A subject is a user id, or an email (an invitation) until that user's first login with a
-- verified email binds it to their user id; the email is kept.
CREATE TABLE grants (
    id           UUID        NOT NULL DEFAULT gen_random_uuid(),
    instance_id  TEXT        NOT NULL,
    user_id      TEXT,
    email        TEXT,
    role         TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    bound_at     TIMESTAMPTZ,
    CONSTRAINT grants_pkey PRIMARY KEY (id),
    CONSTRAINT grants_instance_id_fkey FOREIGN KEY (instance_id) REFERENCES instances (id),
    CONSTRAINT grants_subject_check CHECK (user_id IS NOT NULL OR email IS NOT NULL),
    CONSTRAINT grants_email_format CHECK (email IS NULL OR (email = lower(email) AND length(email) <= 254)),
    CONSTRAINT grants_user_id_format CHECK (user_id IS NULL OR (user_id ~ '^[^|]+\|.+$' AND length(user_id) <= 255)),
    CONSTRAINT grants_role_format CHECK (role ~ '^[a-z][a-z0-9_-]{0,31}$')
);

CREATE UNIQUE INDEX grants_instance_user_key ON grants (instance_id, user_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX grants_instance_invitation_key ON grants (instance_id, email) WHERE user_id IS NULL;
CREATE INDEX grants_user_id_idx ON grants (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX grants_invitation_email_idx ON grants (email) WHERE user_id IS NULL;

-- One row per revision: what changed. `grant_data` is the grant after the change (NULL when
-- removed); an `owner` change carries the new owner in `owner`.
CREATE TABLE grant_changes (
    instance_id  TEXT        NOT NULL,
    revision     BIGINT      NOT NULL,
    op           TEXT        NOT NULL,
    grant_id     UUID,
    grant_data   JSONB,
    owner        TEXT,
    at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT grant_changes_pkey PRIMARY KEY (instance_id, revision),
    CONSTRAINT grant_changes_instance_id_fkey FOREIGN KEY (instance_id) REFERENCES instances (id),
    CONSTRAINT grant_changes_op_check CHECK (
        (op IN ('added', 'updated') AND grant_id IS NOT NULL AND grant_data IS NOT NULL)
        OR (op = 'removed' AND grant_id IS NOT NULL)
        OR (op = 'owner' AND owner IS NOT NULL))
);

-- Instance keys, stored only as SHA-256 hashes (a key is 32 random bytes, so a fast hash is
-- enough). A key with `expires_at` was rotated out and stays valid until then.
CREATE TABLE instance_keys (
    hash         BYTEA       NOT NULL,
    instance_id  TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ,
    CONSTRAINT instance_keys_pkey PRIMARY KEY (hash),
    CONSTRAINT instance_keys_instance_id_fkey FOREIGN KEY (instance_id) REFERENCES instances (id),
    CONSTRAINT instance_keys_hash_length CHECK (octet_length(hash) = 32)
);

CREATE INDEX instance_keys_instance_id_idx ON instance_keys (instance_id);

-- Every replica keeps revisions and keys in memory, kept fresh by these notifications.
CREATE FUNCTION fleetgate_notify_grants() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('fleetgate_grants', NEW.instance_id || ' ' || NEW.revision);
    RETURN NULL;
END $$;

CREATE TRIGGER grant_changes_notify AFTER INSERT ON grant_changes
    FOR EACH ROW EXECUTE FUNCTION fleetgate_notify_grants();

CREATE FUNCTION fleetgate_notify_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('fleetgate_keys', COALESCE(NEW.instance_id, OLD.instance_id));
    RETURN NULL;
END $$;

CREATE TRIGGER instance_keys_notify AFTER INSERT OR UPDATE OR DELETE ON instance_keys
    FOR EACH ROW EXECUTE FUNCTION fleetgate_notify_keys();
