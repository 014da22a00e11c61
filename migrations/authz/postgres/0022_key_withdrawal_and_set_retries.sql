-- Issue 24, items 12 and 17.
--
-- A signing key can be withdrawn (`authz keys revoke <kid>`, the console's "Withdraw"): status
-- 'withdrawn', never published again, its private half wiped. The change notifies replicas
-- like every change to signing_keys (trigger of migration 0005).
ALTER TABLE signing_keys DROP CONSTRAINT signing_keys_status_check;
ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_status_check
    CHECK (status IN ('next', 'active', 'retired', 'withdrawn'));

-- Shared Signals: a SET the receiver refused (RFC 8936 `setErrs`) is delivered again, after a
-- growing pause (`retry_at`), until it has been refused `AUTHZ_SSF_MAX_SET_ERRORS` times; then
-- it is dropped (acknowledged) and audited (`ssf.event_dropped`).
ALTER TABLE ssf_events ADD COLUMN failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE ssf_events ADD COLUMN last_error TEXT;
ALTER TABLE ssf_events ADD COLUMN retry_at BIGINT;
