-- DPoP authorization code binding (RFC 9449 §10): the JWK thumbprint (RFC 7638, base64url) a
-- client named with `dpop_jkt` on /authorize, or proved at /par (§10.1). The code is redeemed
-- only with a DPoP proof signed by that key. NULL: not bound.
ALTER TABLE auth_codes ADD COLUMN dpop_jkt TEXT;
