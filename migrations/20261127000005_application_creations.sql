-- Applications fleetgate is asking Auth0 to create, recorded before it asks: one whose answer
-- was lost (a dropped connection, or the process died before recording it) is found by this
-- mark in its client_metadata and joins the pool, instead of lingering in the tenant where it
-- counts against the tenant's limit.

CREATE TABLE application_creations (
    mark          TEXT        NOT NULL,
    requested_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT application_creations_pkey PRIMARY KEY (mark)
);
