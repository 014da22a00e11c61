-- The web console and two-factor sign-in (issue 17).
-- Sessions say how the user signed in (RFC 8176 `amr`, space-separated) and from where, for
-- the "Sessions" page; a user may be told to choose a new password at the next sign-in (an
-- admin's reset); a consent remembers when it was first given ("Connected apps").
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
ALTER TABLE sessions ADD COLUMN ip TEXT;
ALTER TABLE users ADD COLUMN password_change_required BIGINT NOT NULL DEFAULT 0;
ALTER TABLE consents ADD COLUMN created_at BIGINT;
UPDATE consents SET created_at = updated_at;
CREATE INDEX audit_events_subject_ts ON audit_events(subject, ts);
CREATE INDEX refresh_tokens_user_client ON refresh_tokens(user_id, client_id);
