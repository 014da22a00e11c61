-- Issue 24, review finding C: a device grant is bound to the browser session that approved it
-- (`sid`), as an authorization code is to the session it was issued in. The poll that would
-- issue the tokens is refused once that session has ended (the user signed out, an
-- administrator ended the sessions, disabled the user, reset the password or two-factor).
ALTER TABLE device_codes ADD COLUMN approving_sid TEXT;
