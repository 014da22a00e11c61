-- A browser sign-in between its steps (issue 24): the password, the second factor, a new
-- password after an administrator's reset. The browser holds only a random handle (cookie
-- `authz_pending`); this row, keyed by its SHA-256, says whose sign-in it is, what was done
-- (RFC 8176 `amr`, space-separated) and the credential state it was issued under (`stamp`, a
-- SHA-256 of the password hash, reset flags and two-factor enrolment). Each step spends the
-- row (one DELETE … RETURNING) and issues a new one for the next step; an administrator's
-- reset, disabling the user and a two-factor reset delete the user's rows.
CREATE TABLE pending_signins (
    id_hash    TEXT PRIMARY KEY,             -- SHA-256 of the handle the browser holds
    user_id    TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    amr        TEXT NOT NULL,
    stamp      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX pending_signins_user ON pending_signins(user_id);
CREATE INDEX pending_signins_expiry ON pending_signins(expires_at);
