-- Issue 24 (second review, F1/F2): a counter bumped, on the user row, by every remedy that
-- removes a second factor (an administrator's two-factor reset, a passkey's removal). A session
-- is inserted only while it still has the value its sign-in read, so a sign-in under way with a
-- removed factor gets no session.
ALTER TABLE users ADD COLUMN factors_epoch BIGINT NOT NULL DEFAULT 0;
