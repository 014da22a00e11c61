-- Client ID Metadata Documents (issue 14): a metadata-document client's row says when its
-- document was last fetched and until when that fetch is fresh (caching headers, clamped).
ALTER TABLE clients ADD COLUMN metadata_fetched_at BIGINT;
ALTER TABLE clients ADD COLUMN metadata_expires_at BIGINT;
-- private_key_jwt (RFC 7523): a client's public keys, by URL or inline (a JWK Set as JSON),
-- and the assertions already used (single use: `jti` per client until the assertion expires).
ALTER TABLE clients ADD COLUMN jwks_uri TEXT;
ALTER TABLE clients ADD COLUMN jwks TEXT;
CREATE TABLE client_assertions (
    jti_hash   TEXT PRIMARY KEY,
    client_id  TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL
);
CREATE INDEX client_assertions_expiry ON client_assertions (expires_at);
-- Counters that protect something, updated atomically with what they count: the live
-- self-registered clients (RFC 7591), capped by configuration.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO counters (name, value)
    SELECT 'dynamic_clients', COUNT(*) FROM clients WHERE registration = 'dynamic';
-- When a self-registered or metadata-document client last got tokens (pruning unused ones).
ALTER TABLE clients ADD COLUMN last_used_at BIGINT;
-- A private_key_jwt metadata-document client whose document also lists `none`.
ALTER TABLE clients ADD COLUMN also_public BIGINT NOT NULL DEFAULT 0;
-- One active signing key per purpose, enforced by the database (issue 15: replicas rotating at
-- once). A race before this index could have left two: keep the newest, retire the others
-- (still published for a day, so their tokens verify until they expire).
UPDATE signing_keys SET status = 'retired', retired_at = created_at,
    publish_until = created_at + 86400
    WHERE status = 'active' AND EXISTS (
        SELECT 1 FROM signing_keys n WHERE n.purpose = signing_keys.purpose
            AND n.status = 'active'
            AND (n.created_at > signing_keys.created_at
                 OR (n.created_at = signing_keys.created_at AND n.kid > signing_keys.kid)));
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (purpose) WHERE status = 'active';
