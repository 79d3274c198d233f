-- The host each refresh token the relay hands out was handed out on (its login's redirect URI's):
-- a refresh is refused unless that host is still an active host of the token's instance, and
-- from an origin that is not that host's. Tokens recorded before this column (NULL) are
-- refused: their users sign in again. A host leaving its instance, and an instance deleted or
-- given to another owner, forget their tokens' records (by this index). Expand only (a
-- nullable column, an index).

ALTER TABLE relay_refresh_tokens ADD COLUMN host TEXT;
CREATE INDEX relay_refresh_tokens_instance_id_host_idx ON relay_refresh_tokens (instance_id, host);
