-- TOTP second factor (authz::account::two_factor): the secret sealed under the master key
-- (AAD: the user id), active once confirmed by a code; the last step used, so no code counts
-- twice (updated atomically); recovery codes as SHA-256 hashes, each spent once.
CREATE TABLE user_totp (
    user_id       TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    secret_enc    BLOB NOT NULL,
    created_at    BIGINT NOT NULL,
    confirmed_at  BIGINT,
    last_step     BIGINT
);
CREATE TABLE recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash  TEXT NOT NULL,
    used_at    BIGINT,
    PRIMARY KEY (user_id, code_hash)
);
