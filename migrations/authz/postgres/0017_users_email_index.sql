-- Users found by email address (ID-JAG `subject_claim = "email"`, issue 18): one index read
-- instead of a scan of every user. Case-insensitive, as the lookup compares.
CREATE INDEX users_email_lower ON users (lower(email));
