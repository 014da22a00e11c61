-- mcp-resource schema, SQLite flavour. Note titles and contents are AES-256-GCM ciphertexts.
CREATE TABLE notes (
    id          TEXT PRIMARY KEY,
    owner_sub   TEXT NOT NULL,
    title_enc   BLOB NOT NULL,
    content_enc BLOB NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX notes_owner ON notes(owner_sub, created_at);

CREATE TABLE audit_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    ts        BIGINT NOT NULL,
    subject   TEXT,
    client_id TEXT,
    action    TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    reason    TEXT
);
CREATE INDEX audit_events_ts ON audit_events(ts);
