-- Instance keys record who minted them and get an id to be shown by (never the key, never its
-- hash). Keys minted before this migration have no recorded minter.

ALTER TABLE instance_keys
    ADD COLUMN id UUID NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN minted_by TEXT;

ALTER TABLE instance_keys ADD CONSTRAINT instance_keys_id_key UNIQUE (id);
ALTER TABLE instance_keys ADD CONSTRAINT instance_keys_minted_by_length
    CHECK (minted_by IS NULL OR length(minted_by) <= 600);

-- Invitation emails are folded for ASCII letters only (a local part is compared exactly
-- otherwise: Unicode case rules would let KELVIN SIGN + "im" claim kim's invitation).
ALTER TABLE grants DROP CONSTRAINT grants_email_format;
ALTER TABLE grants ADD CONSTRAINT grants_email_format CHECK (email IS NULL OR (
    email = translate(email, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')
    AND length(email) <= 254));
