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
