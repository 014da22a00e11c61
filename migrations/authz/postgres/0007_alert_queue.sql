-- Security alerts waiting for delivery to their webhook (authz::alerts): bounded, retried
-- with backoff, claimed by one replica at a time (next_attempt_at moves on).
CREATE TABLE alert_queue (
    id               TEXT PRIMARY KEY,
    webhook          BIGINT NOT NULL,
    body             TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    attempts         BIGINT NOT NULL,
    next_attempt_at  BIGINT NOT NULL
);
CREATE INDEX alert_queue_due ON alert_queue (next_attempt_at);
