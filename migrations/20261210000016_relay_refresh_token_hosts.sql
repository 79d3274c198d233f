-- The host each refresh token the relay hands out was handed out on (its login's redirect URI's):
-- a refresh is refused once that host is no longer an active host of the token's instance, or
-- from an origin that is not that host's. Tokens recorded before this column (NULL) are
-- refused: their users sign in again. Expand only (a nullable column).

ALTER TABLE relay_refresh_tokens ADD COLUMN host TEXT;
