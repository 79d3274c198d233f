-- Every replica keeps what a login decision reads in memory (the instance a host names, its
-- status and owner: src/grants/roster.rs). An instance's `version` moves on every write of its
-- row; writers of one instance are serialised by its row lock, so versions grow in commit order
-- per instance and a replica never replaces newer facts with older ones. The notification tells
-- every replica which instance to read again, and at which version (a replica that has it
-- already reads nothing). A change of domains names its instance without a version: every
-- replica reads it again, also when the change was written by hand without touching the
-- instance.
--
-- Expand only: the column has a default and the trigger fills it, so a previous release that
-- neither reads nor writes it keeps working beside this one.

CREATE SEQUENCE instance_versions AS BIGINT;

ALTER TABLE instances ADD COLUMN version BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION fleetgate_instance_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.version := nextval('instance_versions');
    PERFORM pg_notify('fleetgate_instances', NEW.id || ' ' || NEW.version);
    RETURN NEW;
END $$;

CREATE TRIGGER instances_version BEFORE INSERT OR UPDATE ON instances
    FOR EACH ROW EXECUTE FUNCTION fleetgate_instance_version();

CREATE FUNCTION fleetgate_notify_domain() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('fleetgate_instances', OLD.instance_id);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('fleetgate_instances', NEW.instance_id);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER domains_notify_instances AFTER INSERT OR UPDATE OR DELETE ON domains
    FOR EACH ROW EXECUTE FUNCTION fleetgate_notify_domain();
