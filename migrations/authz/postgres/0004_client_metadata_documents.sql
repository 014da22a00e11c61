-- Client ID Metadata Documents (issue 14): a metadata-document client's row says when its
-- document was last fetched and until when that fetch is fresh (caching headers, clamped).
ALTER TABLE clients ADD COLUMN metadata_fetched_at BIGINT;
ALTER TABLE clients ADD COLUMN metadata_expires_at BIGINT;
