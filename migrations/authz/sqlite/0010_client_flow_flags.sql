-- Issue 18: per-client switches of the newer flows. A client registered with
-- `dpop_bound_access_tokens` must present DPoP proofs (RFC 9449 §5.2); one with
-- `require_pushed_authorization_requests` must push its authorization requests (RFC 9126 §6).
ALTER TABLE clients ADD COLUMN dpop_bound BIGINT NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN require_par BIGINT NOT NULL DEFAULT 0;
