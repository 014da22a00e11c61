-- Passkeys (WebAuthn, issue 18): each credential of a user, as webauthn-rs keeps it (public key,
-- counter, flags: JSON), found by its credential id at sign-in; `user_handle` is the
-- WebAuthn user id (a UUID derived from the user id) that discoverable sign-in returns.
CREATE TABLE passkeys (
    credential_id TEXT PRIMARY KEY,          -- base64url of the credential id
    user_id       TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    user_handle   TEXT NOT NULL,
    name          TEXT NOT NULL,
    passkey       TEXT NOT NULL,             -- webauthn-rs Passkey (public data only)
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT
);
CREATE INDEX passkeys_user ON passkeys(user_id);
CREATE INDEX passkeys_handle ON passkeys(user_handle);
-- A ceremony in progress: the challenge state, spent once (deleted when used).
CREATE TABLE webauthn_ceremonies (
    id_hash    TEXT PRIMARY KEY,             -- SHA-256 of the id the browser holds
    user_id    TEXT,
    kind       TEXT NOT NULL,                -- register | authenticate
    state      TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
