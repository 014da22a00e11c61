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
ALTER TABLE refresh_tokens ADD COLUMN successor_enc BLOB;
CREATE INDEX refresh_tokens_pending_retry ON refresh_tokens(used_at) WHERE successor_enc IS NOT NULL;

-- Remembered consent is for one resource (RFC 8707 §2.2): the key gains the resource. Rows
-- from before had none; they stay, match no request, and the user is asked again once.
CREATE TABLE consents_new (
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    resource   TEXT NOT NULL,
    scope      TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id, resource)
);
INSERT INTO consents_new (user_id, client_id, resource, scope, updated_at)
    SELECT user_id, client_id, '', scope, updated_at FROM consents;
DROP TABLE consents;
ALTER TABLE consents_new RENAME TO consents;

-- Signing keys may be published before they sign: status 'next' until activate_at.
CREATE TABLE signing_keys_new (
    kid             TEXT PRIMARY KEY,
    alg             TEXT NOT NULL,
    private_key_enc BLOB NOT NULL,
    public_jwk      TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('next', 'active', 'retired')),
    created_at      BIGINT NOT NULL,
    retired_at      BIGINT,
    publish_until   BIGINT,
    purpose         TEXT NOT NULL DEFAULT 'access',
    activate_at     BIGINT
);
INSERT INTO signing_keys_new (kid, alg, private_key_enc, public_jwk, status, created_at,
                              retired_at, publish_until, purpose)
    SELECT kid, alg, private_key_enc, public_jwk, status, created_at, retired_at, publish_until,
           purpose FROM signing_keys;
DROP TABLE signing_keys;
ALTER TABLE signing_keys_new RENAME TO signing_keys;

-- URI lists become JSON arrays (a newline-joined string let a URI carrying a newline smuggle
-- in a second, unvalidated one). Every list is split once, in order, then re-assembled.
CREATE TEMP TABLE uri_items AS
WITH RECURSIVE lists(tbl, id, col, rest) AS (
    SELECT 'clients', id, 'redirect_uris', redirect_uris || char(10) FROM clients
    UNION ALL
    SELECT 'clients', id, 'post_logout_redirect_uris', post_logout_redirect_uris || char(10)
    FROM clients
    UNION ALL
    SELECT 'clients', id, 'resources', resources || char(10) FROM clients
    UNION ALL
    SELECT 'refresh_tokens', token_hash, 'resources', resources || char(10) FROM refresh_tokens
),
split(tbl, id, col, rest, item, n) AS (
    SELECT tbl, id, col, rest, NULL, 0 FROM lists
    UNION ALL
    SELECT tbl, id, col, substr(rest, instr(rest, char(10)) + 1),
           substr(rest, 1, instr(rest, char(10)) - 1), n + 1
    FROM split WHERE rest <> ''
)
SELECT tbl, id, col, item, n FROM split WHERE item IS NOT NULL AND item <> '';

UPDATE clients SET
    redirect_uris = (SELECT json_group_array(item) FROM (SELECT item FROM uri_items
        WHERE tbl = 'clients' AND id = clients.id AND col = 'redirect_uris' ORDER BY n)),
    post_logout_redirect_uris = (SELECT json_group_array(item) FROM (SELECT item FROM uri_items
        WHERE tbl = 'clients' AND id = clients.id AND col = 'post_logout_redirect_uris'
        ORDER BY n)),
    resources = (SELECT json_group_array(item) FROM (SELECT item FROM uri_items
        WHERE tbl = 'clients' AND id = clients.id AND col = 'resources' ORDER BY n));
UPDATE refresh_tokens SET
    resources = (SELECT json_group_array(item) FROM (SELECT item FROM uri_items
        WHERE tbl = 'refresh_tokens' AND id = refresh_tokens.token_hash ORDER BY n));
DROP TABLE uri_items;
