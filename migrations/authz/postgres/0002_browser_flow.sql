-- Browser flow (authorization code + PKCE, OpenID Connect, sessions, consent, registration),
-- API keys, token exchange and introspection permissions,
-- and per-account login throttling. Times are Unix seconds.
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '';
-- First-party clients may skip the consent page.
ALTER TABLE clients ADD COLUMN skip_consent BIGINT NOT NULL DEFAULT 0;
-- 'admin' (CLI/seed) or 'dynamic' (RFC 7591 /register).
ALTER TABLE clients ADD COLUMN registration TEXT NOT NULL DEFAULT 'admin';
-- API keys are clients owned by a user (client_credentials → tokens with the owner as sub).
ALTER TABLE clients ADD COLUMN owner_id TEXT REFERENCES users(id) ON DELETE CASCADE;
ALTER TABLE clients ADD COLUMN expires_at BIGINT;
ALTER TABLE clients ADD COLUMN revoked_at BIGINT;
-- May call /introspect (RFC 7662).
ALTER TABLE clients ADD COLUMN may_introspect BIGINT NOT NULL DEFAULT 0;
-- The resource server this client is: token exchange accepts subject tokens for it (RFC 8693).
ALTER TABLE clients ADD COLUMN serves_resource TEXT;

ALTER TABLE users ADD COLUMN email TEXT;

-- 'access' signs access tokens (and ID tokens when it is RS256); 'id_token' is the RS256 key
-- kept for ID tokens when access tokens use another algorithm (OIDC Core §15.1).
ALTER TABLE signing_keys ADD COLUMN purpose TEXT NOT NULL DEFAULT 'access';

-- The browser session a grant came from (OIDC `sid`), so logout can revoke it.
ALTER TABLE refresh_tokens ADD COLUMN sid TEXT;
CREATE INDEX refresh_tokens_sid ON refresh_tokens(sid);

CREATE TABLE sessions (
    id_hash      TEXT PRIMARY KEY,          -- SHA-256 of the cookie value
    sid          TEXT NOT NULL UNIQUE,      -- public id, the id_token's `sid`
    user_id      TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    auth_time    BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,           -- absolute end
    ended_at     BIGINT
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE auth_codes (
    code_hash      TEXT PRIMARY KEY,        -- SHA-256 of the code
    client_id      TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    user_id        TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    sid            TEXT NOT NULL,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    resource       TEXT NOT NULL,
    scope          TEXT NOT NULL,
    nonce          TEXT,
    auth_time      BIGINT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT,
    family_id      TEXT                     -- refresh family issued from it (revoked on replay)
);

CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- Failed logins per normalised username (known or not, so the lock reveals nothing).
CREATE TABLE login_throttle (
    username_key TEXT PRIMARY KEY,          -- SHA-256 of the lower-cased username
    failures     BIGINT NOT NULL,
    window_start BIGINT NOT NULL,
    lockouts     BIGINT NOT NULL,
    locked_until BIGINT
);
