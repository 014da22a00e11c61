-- Issue 18: the device authorization grant (RFC 8628). Both codes are stored as hashes: the
-- device code as SHA-256, the short user code as HMAC-SHA256 under a master-derived key.
CREATE TABLE device_codes (
    device_hash     TEXT PRIMARY KEY,
    user_code_hash  TEXT NOT NULL UNIQUE,
    client_id       TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    scope           TEXT NOT NULL,
    resource        TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    interval_secs   BIGINT NOT NULL,
    last_poll_at    BIGINT,
    -- 'pending' → 'approved' | 'denied'; 'approved' → 'issued' (once, by the polling client).
    status          TEXT NOT NULL DEFAULT 'pending',
    -- What the last poll was answered (set by the same UPDATE that records the poll).
    last_result     TEXT,
    user_id         TEXT REFERENCES users(id) ON DELETE CASCADE,
    decided_at      BIGINT,
    -- How the approving user had signed in (RFC 8176 `amr`, space-separated): the tokens say so.
    amr             TEXT
);
CREATE INDEX device_codes_expires ON device_codes(expires_at);
