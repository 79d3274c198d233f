-- Where this database's rows were last written: the cluster's system identifier, its timeline
-- and the database's oid. It changes when the database is restored from a dump into another
-- database, or a replica is promoted; fleetgate then moves every instance's grants revision
-- past any it handed out before, so that no polling instance is answered a delta (or "no
-- change") from a history the restore lost. (Expand only: a nullable column.)
ALTER TABLE deployment ADD COLUMN lineage text;
