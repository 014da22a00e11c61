-- What this server learned it must refuse (mcp_resource::signals): a session's tokens, one
-- client's grant in a session, or a user's (or one client's of a user's) tokens issued at or
-- before a time. From Shared Signals events and from the logout tool alike; kept until no
-- token it covers can still be valid. Replaces revoked_sessions (its rows move over).
CREATE TABLE revocations (
    rule        TEXT PRIMARY KEY,
    sid         TEXT,
    client_id   TEXT,
    sub         TEXT,
    before_iat  BIGINT,
    expires_at  BIGINT NOT NULL
);
INSERT INTO revocations (rule, sid, expires_at)
    SELECT 'session ' || sid, sid, expires_at FROM revoked_sessions;
DROP TABLE revoked_sessions;
