-- Instance keys record who minted them and get an id to be shown by (never the key, never its
-- hash). Keys minted before this migration have no recorded minter.

ALTER TABLE instance_keys
    ADD COLUMN id UUID NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN minted_by TEXT;

ALTER TABLE instance_keys ADD CONSTRAINT instance_keys_id_key UNIQUE (id);
ALTER TABLE instance_keys ADD CONSTRAINT instance_keys_minted_by_length
    CHECK (minted_by IS NULL OR length(minted_by) <= 600);
