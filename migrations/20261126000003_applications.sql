-- The pool of Auth0 applications whose allow-lists fleetgate manages, and which application
-- each instance is configured with. An assignment never changes by itself.

CREATE TABLE applications (
    client_id   TEXT        NOT NULL,
    name        TEXT        NOT NULL,
    origin      TEXT        NOT NULL,
    position    BIGINT      GENERATED ALWAYS AS IDENTITY,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT applications_pkey PRIMARY KEY (client_id),
    CONSTRAINT applications_origin_check CHECK (origin IN ('primary', 'created', 'registered'))
);

CREATE TABLE assignments (
    instance_id  TEXT        NOT NULL,
    client_id    TEXT        NOT NULL,
    assigned_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT assignments_pkey PRIMARY KEY (instance_id),
    CONSTRAINT assignments_instance_id_fkey FOREIGN KEY (instance_id) REFERENCES instances (id),
    CONSTRAINT assignments_client_id_fkey FOREIGN KEY (client_id) REFERENCES applications (client_id)
);

CREATE INDEX assignments_client_id_idx ON assignments (client_id);
