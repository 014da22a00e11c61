-- Shared Signals (authz::ssf): each security event, as one signed SET per receiver, queued
-- until the receiver acknowledges it (RFC 8936 poll delivery). Acknowledged events are kept a
-- day, unacknowledged ones a week (housekeeping).
CREATE TABLE ssf_events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    receiver    TEXT NOT NULL,
    jti         TEXT NOT NULL,
    set_jwt     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    acked_at    BIGINT
);
CREATE UNIQUE INDEX ssf_events_receiver_jti ON ssf_events (receiver, jti);
CREATE INDEX ssf_events_pending ON ssf_events (receiver, id) WHERE acked_at IS NULL;
