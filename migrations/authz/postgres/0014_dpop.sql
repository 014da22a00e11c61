-- Issue 18, DPoP (RFC 9449 §5): a public client's refresh token is bound to the DPoP key its
-- first token request proved (the key's RFC 7638 thumbprint, base64url); refreshing needs a
-- proof signed with the same key. NULL: not bound (confidential clients, or no DPoP).
ALTER TABLE refresh_tokens ADD COLUMN dpop_jkt TEXT;
