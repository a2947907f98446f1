-- API tokens (issue 16, docs/access.md): random bearer tokens, shown once by `datenwerk tokens create` and stored
-- only as their SHA-256 hash. A token carries scopes (`admin`, `ingest:<pipeline>`, `run:<pipeline>`,
-- `read:<dataset>`, `tenant:<ags>`), may expire and can be revoked; the server looks the hash up on every
-- request, so a revoked or expired token is refused from the next request on.
CREATE TABLE datenwerk.api_tokens (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL DEFAULT '',
    token_hash    bytea NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    -- The first characters of the token (`dwk_` and 4 more), for `tokens list`: enough to tell tokens apart.
    hint          text NOT NULL,
    scopes        text[] NOT NULL CHECK (cardinality(scopes) > 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    revoked_at    timestamptz,
    -- Updated at most once a minute per token (a webhook pushing every second costs no write per request).
    last_used_at  timestamptz
);
