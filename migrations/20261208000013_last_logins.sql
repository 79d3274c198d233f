-- When each person last logged in to each instance (the access page shows it). Recorded from
-- login decisions in memory and written in batches (at most one row write per person and
-- instance per flush), never one write per login. (Expand only: a new table.)
CREATE TABLE last_logins (
    instance_id text        NOT NULL,
    user_id     text        NOT NULL,
    -- The email the login came with, if any (shows who an owner or a user id is).
    email       text,
    -- The connection it went through (Username-Password-Authentication, google-oauth2, …).
    connection  text,
    at          timestamptz NOT NULL,
    CONSTRAINT last_logins_pkey PRIMARY KEY (instance_id, user_id),
    CONSTRAINT last_logins_instance_id_fkey FOREIGN KEY (instance_id) REFERENCES instances (id) ON DELETE CASCADE
);
