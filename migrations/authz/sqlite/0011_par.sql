-- Issue 18: pushed authorization requests (RFC 9126). One row per pushed request until it is
-- spent at /authorize (deleted in the same statement that reads it) or expires.
CREATE TABLE par_requests (
    uri_hash    TEXT PRIMARY KEY,            -- SHA-256 of the request_uri's random part
    client_id   TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    params      TEXT NOT NULL,               -- the validated parameters (form-encoded)
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX par_requests_expires ON par_requests(expires_at);
