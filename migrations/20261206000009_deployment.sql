-- This deployment's identity: written into the client_metadata of every application it manages
-- (key fleetgate_deployment), so that two deployments pointed at one application (staging and
-- production on one tenant) notice each other instead of each keeping half of its lists. Made
-- once, here, so a database restored from a dump keeps its identity. (Expand only: a new table.)
CREATE TABLE deployment (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    created_at timestamptz NOT NULL DEFAULT now(),
    singleton boolean NOT NULL DEFAULT true,
    CONSTRAINT deployment_pkey PRIMARY KEY (id),
    CONSTRAINT deployment_singleton_unique UNIQUE (singleton),
    CONSTRAINT deployment_singleton_true CHECK (singleton)
);
INSERT INTO deployment DEFAULT VALUES;
