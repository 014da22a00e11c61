-- Security round 2 (issue 11). Times are Unix seconds.

-- Credential changes (password reset): grants authenticated before this are refused.
ALTER TABLE users ADD COLUMN credentials_changed_at BIGINT;

-- The client a cookie-less grant session belongs to (password grant); NULL for browser
-- sessions. Revoking that client's token ends such a session; a browser session outlives the
-- revocation of one client's grant (RFC 7009 §2.1 scopes revocation to the grant).
ALTER TABLE sessions ADD COLUMN client_id TEXT;

-- One client's grant within a session, revoked (RFC 7009): its access tokens are refused by
-- this server's own endpoints until they could no longer be valid (expires_at).
CREATE TABLE revoked_grants (
    sid        TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    revoked_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (sid, client_id)
);

-- The idempotent retry window of refresh rotation: the successor of a just-used token, sealed
-- under the master key (AAD: the used token's hash), erased once the window has passed.
ALTER TABLE refresh_tokens ADD COLUMN successor_hash TEXT;
ALTER TABLE refresh_tokens ADD COLUMN successor_enc BYTEA;
CREATE INDEX refresh_tokens_pending_retry ON refresh_tokens(used_at) WHERE successor_enc IS NOT NULL;

-- Remembered consent is for one resource (RFC 8707 §2.2): the key gains the resource. Rows
-- from before had none; they stay, match no request, and the user is asked again once.
ALTER TABLE consents ADD COLUMN resource TEXT NOT NULL DEFAULT '';
ALTER TABLE consents DROP CONSTRAINT consents_pkey;
ALTER TABLE consents ADD PRIMARY KEY (user_id, client_id, resource);
ALTER TABLE consents ALTER COLUMN resource DROP DEFAULT;

-- Signing keys may be published before they sign: status 'next' until activate_at.
ALTER TABLE signing_keys DROP CONSTRAINT signing_keys_status_check;
ALTER TABLE signing_keys ADD CONSTRAINT signing_keys_status_check
    CHECK (status IN ('next', 'active', 'retired'));
ALTER TABLE signing_keys ADD COLUMN activate_at BIGINT;

-- URI lists become JSON arrays (a newline-joined string let a URI carrying a newline smuggle
-- in a second, unvalidated one).
UPDATE clients SET
    redirect_uris = COALESCE((SELECT json_agg(u ORDER BY o)::text
        FROM unnest(string_to_array(redirect_uris, E'\n')) WITH ORDINALITY AS t(u, o)
        WHERE u <> ''), '[]'),
    post_logout_redirect_uris = COALESCE((SELECT json_agg(u ORDER BY o)::text
        FROM unnest(string_to_array(post_logout_redirect_uris, E'\n')) WITH ORDINALITY AS t(u, o)
        WHERE u <> ''), '[]'),
    resources = COALESCE((SELECT json_agg(u ORDER BY o)::text
        FROM unnest(string_to_array(resources, E'\n')) WITH ORDINALITY AS t(u, o)
        WHERE u <> ''), '[]');
UPDATE refresh_tokens SET
    resources = COALESCE((SELECT json_agg(u ORDER BY o)::text
        FROM unnest(string_to_array(resources, E'\n')) WITH ORDINALITY AS t(u, o)
        WHERE u <> ''), '[]');
