-- Resource events reported once (POST /resource-events): a report retried after its answer
-- was lost carries the same keys (the event's id at the reporter and the time it reported), and
-- an event whose key is here is not recorded again. Pruned by housekeeping after eight days.
CREATE TABLE resource_event_keys (
    reporter TEXT NOT NULL,
    event_id BIGINT NOT NULL,
    reported_ts BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (reporter, event_id, reported_ts)
);
CREATE INDEX resource_event_keys_received ON resource_event_keys (received_at);
