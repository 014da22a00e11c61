-- PostgreSQL also announces client and signing-key changes to replicas (LISTEN/NOTIFY);
-- SQLite is one process's database, with nobody to tell.

-- One pending (published, not yet signing) key per purpose: replicas running the rotation
-- schedule at the same moment cannot both publish a successor. Duplicates left by earlier
-- races never signed; the newer ones go.
DELETE FROM signing_keys
WHERE status = 'next'
  AND EXISTS (SELECT 1 FROM signing_keys n
              WHERE n.purpose = signing_keys.purpose
                AND n.status = 'next'
                AND (n.created_at < signing_keys.created_at
                     OR (n.created_at = signing_keys.created_at AND n.kid < signing_keys.kid)));
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (purpose) WHERE status = 'next';
