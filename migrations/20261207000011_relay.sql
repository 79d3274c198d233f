-- The login relay's memory, shared by every replica (a login begun on one finishes on another).
-- Only hashes of what a browser or an SPA holds are stored (SHA-256 of the handle, the code,
-- the refresh token): a copy of this table lets nobody finish a login or refresh a token.
-- (Expand only: new tables.)

-- One step of one login, made by the relay and used at most once at each stage:
--   kind 'login'   : /authorize → the Action's decision → /callback → the code's exchange
--   kind 'refresh' : a refresh-token exchange → the Action's decision
--   kind 'logout'  : /v2/logout or /oidc/logout → the return to the instance
CREATE TABLE relay_transactions (
    handle_hash   bytea       NOT NULL,
    kind          text        NOT NULL,
    instance_id   text        NOT NULL,
    -- The SPA's redirect URI (a login) or the logout's returnTo (a logout).
    return_to     text        NOT NULL DEFAULT '',
    -- The SPA's own state, given back to it unchanged.
    state         text,
    response_mode text        NOT NULL DEFAULT 'query',
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    decided_at    timestamptz,
    returned_at   timestamptz,
    code_hash     bytea,
    exchanged_at  timestamptz,
    CONSTRAINT relay_transactions_pkey PRIMARY KEY (handle_hash),
    CONSTRAINT relay_transactions_kind_check CHECK (kind IN ('login', 'refresh', 'logout')),
    CONSTRAINT relay_transactions_response_mode_check
        CHECK (response_mode IN ('query', 'fragment', 'form_post', 'web_message')),
    CONSTRAINT relay_transactions_instance_id_fkey FOREIGN KEY (instance_id) REFERENCES instances (id)
);
CREATE UNIQUE INDEX relay_transactions_code_hash_key ON relay_transactions (code_hash)
    WHERE code_hash IS NOT NULL;
CREATE INDEX relay_transactions_expires_at_idx ON relay_transactions (expires_at);

-- Which instance each refresh token the relay handed out belongs to (rotation records the
-- new token under the same instance).
CREATE TABLE relay_refresh_tokens (
    token_hash   bytea       NOT NULL,
    instance_id  text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT relay_refresh_tokens_pkey PRIMARY KEY (token_hash),
    CONSTRAINT relay_refresh_tokens_instance_id_fkey FOREIGN KEY (instance_id) REFERENCES instances (id)
);
CREATE INDEX relay_refresh_tokens_last_used_at_idx ON relay_refresh_tokens (last_used_at);
