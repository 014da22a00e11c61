-- Reporting denied tool calls to the authorization server (mcp_resource::denials): the id of
-- the last audit row reported (only rows after it are sent, each once), and the replica that
-- currently reports (a lease, so replicas sharing this database do not report twice). Starts
-- at the newest row already here: what was denied before this migration is not reported.
CREATE TABLE denial_report_cursor (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    last_id      BIGINT NOT NULL,
    leased_by    TEXT,
    leased_until BIGINT NOT NULL DEFAULT 0
);
INSERT INTO denial_report_cursor (id, last_id)
    SELECT 1, COALESCE(MAX(id), 0) FROM audit_events;
