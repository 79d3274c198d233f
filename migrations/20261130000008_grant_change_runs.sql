-- A change to many grants at once (replacing an instance's grants) is one revision: its
-- changes are one run in the log, told apart by their place in it.
ALTER TABLE grant_changes ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE grant_changes DROP CONSTRAINT grant_changes_pkey;
ALTER TABLE grant_changes ADD CONSTRAINT grant_changes_pkey PRIMARY KEY (instance_id, revision, seq);

-- One notification per revision, however many changes it holds.
DROP TRIGGER grant_changes_notify ON grant_changes;
CREATE TRIGGER grant_revisions_notify AFTER INSERT OR UPDATE OF revision ON grant_revisions
    FOR EACH ROW EXECUTE FUNCTION fleetgate_notify_grants();
