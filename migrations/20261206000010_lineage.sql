-- Where this database's rows were last written: the cluster's system identifier, its timeline
-- and the database's oid. It changes when the database is restored from a dump into another
-- database, or a replica is promoted; fleetgate then moves every instance's grants revision
-- past any it handed out before (to `revision_floor`), so that no polling instance is answered
-- a delta (or "no change") from a history the restore lost; an instance whose revisions start
-- later starts above that floor too. (Expand only: new columns, nullable or defaulted.)
ALTER TABLE deployment ADD COLUMN lineage text;
ALTER TABLE deployment ADD COLUMN revision_floor bigint NOT NULL DEFAULT 0;
