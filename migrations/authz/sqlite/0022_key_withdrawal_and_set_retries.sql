-- Issue 24, items 12 and 17.
--
-- A signing key can be withdrawn (`authz keys revoke <kid>`, the console's "Withdraw"): status
-- 'withdrawn', never published again, its private half wiped. SQLite cannot alter a CHECK
-- constraint: the table is rebuilt, with its indexes.
CREATE TABLE signing_keys_new (
    kid             TEXT PRIMARY KEY,
    alg             TEXT NOT NULL,
    private_key_enc BLOB NOT NULL,
    public_jwk      TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('next', 'active', 'retired', 'withdrawn')),
    created_at      BIGINT NOT NULL,
    retired_at      BIGINT,
    publish_until   BIGINT,
    purpose         TEXT NOT NULL DEFAULT 'access',
    activate_at     BIGINT
);
INSERT INTO signing_keys_new (kid, alg, private_key_enc, public_jwk, status, created_at,
                              retired_at, publish_until, purpose, activate_at)
    SELECT kid, alg, private_key_enc, public_jwk, status, created_at, retired_at, publish_until,
           purpose, activate_at FROM signing_keys;
DROP TABLE signing_keys;
ALTER TABLE signing_keys_new RENAME TO signing_keys;
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (purpose) WHERE status = 'active';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (purpose) WHERE status = 'next';

-- Shared Signals: a SET the receiver refused (RFC 8936 `setErrs`) is delivered again, after a
-- growing pause (`retry_at`), until it has been refused `AUTHZ_SSF_MAX_SET_ERRORS` times; then
-- it is dropped (acknowledged) and audited (`ssf.event_dropped`).
ALTER TABLE ssf_events ADD COLUMN failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ssf_events ADD COLUMN last_error TEXT;
ALTER TABLE ssf_events ADD COLUMN retry_at BIGINT;
