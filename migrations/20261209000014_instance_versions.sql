-- Every replica keeps what a login decision reads in memory (the instance a host names, its
-- status and owner: src/grants/roster.rs). An instance's `version` moves on every write of its
-- row; writers of one instance are serialised by its row lock, so versions grow in commit order
-- per instance and a replica never replaces newer facts with older ones. The notification tells
-- every replica which instance to read again, and at which version (a replica that has it
-- already reads nothing).
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

-- A change of domains touches its instance's row, whoever writes it, so the version moves with
-- the hosts; once per transaction (a row this transaction wrote already moved, and the
-- notification goes out at commit, when every change of the transaction can be read).
CREATE FUNCTION fleetgate_domains_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE instances SET updated_at = now()
    WHERE id IN (SELECT instance_id FROM changed) AND xmin <> pg_current_xact_id()::xid;
    RETURN NULL;
END $$;

CREATE TRIGGER domains_touch_on_insert AFTER INSERT ON domains
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION fleetgate_domains_touch();
CREATE TRIGGER domains_touch_on_delete AFTER DELETE ON domains
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION fleetgate_domains_touch();

-- A host that moves from one instance to another by an update touches both.
CREATE FUNCTION fleetgate_domains_touch_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE instances SET updated_at = now()
    WHERE id IN (SELECT instance_id FROM changed UNION SELECT instance_id FROM changed_before)
      AND xmin <> pg_current_xact_id()::xid;
    RETURN NULL;
END $$;

CREATE TRIGGER domains_touch_on_update AFTER UPDATE ON domains
    REFERENCING OLD TABLE AS changed_before NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION fleetgate_domains_touch_moved();
