-- Sessions (grants) logged out through this server: their access tokens are refused until
-- they expire. Rows are deleted once no token of the session can still be valid.
CREATE TABLE revoked_sessions (
    sid        TEXT PRIMARY KEY,
    revoked_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
