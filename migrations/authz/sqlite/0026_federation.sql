-- Federation (issue 26). An upstream identity (provider id + the provider's subject, the only
-- pair a provider guarantees to be stable: OIDC Core §2, §5.7) linked to one local user:
-- created at a first sign-in (provisioning, or linking by a verified email address where the
-- operator allows it) or explicitly by the user; each sign-in through it is recorded.
CREATE TABLE federated_identities (
    provider      TEXT NOT NULL,            -- the [[upstream]] id
    subject       TEXT NOT NULL,            -- the provider's subject (sub; GitHub's id)
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    email         TEXT,                     -- as last asserted (shown to the user and admins)
    created_at    BIGINT NOT NULL,
    last_login_at BIGINT,
    last_sid      TEXT,                     -- the provider's session (ID token `sid`) at the
                                            -- last sign-in: a back-channel logout naming it
    PRIMARY KEY (provider, subject)
);
CREATE INDEX federated_identities_user ON federated_identities(user_id);
CREATE INDEX federated_identities_sid ON federated_identities(provider, last_sid);

-- A round trip to an upstream provider in progress: keyed by the SHA-256 of the `state` sent
-- (random, single use: spent with one DELETE … RETURNING), bound to the browser that began it
-- (the SHA-256 of a random cookie value), with the SHA-256 of the `nonce`, the PKCE verifier
-- sealed under the master key, and where the sign-in continues afterwards.
CREATE TABLE upstream_logins (
    state_hash    TEXT PRIMARY KEY,
    provider      TEXT NOT NULL,
    browser_hash  TEXT NOT NULL,
    nonce_hash    TEXT NOT NULL,
    verifier_enc  TEXT NOT NULL,
    target        TEXT NOT NULL,            -- JSON: {"request": …} or {"next": …}
    link_user_id  TEXT,                     -- an explicit link begun from the account page
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX upstream_logins_expiry ON upstream_logins(expires_at);

-- Back-channel logout tokens already acted on (OIDC Back-Channel Logout §2.6: `jti`), kept
-- until they could no longer be accepted anyway.
CREATE TABLE spent_logout_tokens (
    jti_hash   TEXT PRIMARY KEY,                 -- SHA-256 of provider id + jti
    expires_at BIGINT NOT NULL
);
CREATE INDEX spent_logout_tokens_expiry ON spent_logout_tokens(expires_at);

-- The token vault: a provider's tokens for a user (providers with `vault = true`), sealed
-- under the master key (AES-256-GCM, associated data = user + provider), released only by
-- token exchange to the resource servers the operator allowed. Deleted on unlink, account
-- deletion, an administrator's "end all sessions", a reset that removes linked accounts, and
-- the provider's back-channel logout.
CREATE TABLE upstream_tokens (
    user_id     TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider    TEXT NOT NULL,
    subject     TEXT NOT NULL,                   -- the linked identity they were given to
    access_enc  TEXT NOT NULL,
    refresh_enc TEXT,
    expires_at  BIGINT,                          -- of the access token, when the provider said
    scope       TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, provider)
);
