-- Replicas learn of client and signing-key changes at once: every committed change sends a
-- notification on channel `authz_changes` (payload `client:<id>` or `keys`), which each
-- running server LISTENs to (authz::replicas). Triggers, so changes made by any process (the
-- CLI, another replica, an operator's SQL) are announced. Notifications are delivered at
-- commit, so a listener that re-reads sees the change.

CREATE FUNCTION authz_notify_client() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('authz_changes', 'client:' || OLD.id);
    ELSIF TG_OP = 'INSERT' THEN
        PERFORM pg_notify('authz_changes', 'client:' || NEW.id);
    -- Recording a client's last use (at most hourly) changes nothing a cache holds.
    ELSIF (to_jsonb(OLD) - 'last_used_at') IS DISTINCT FROM (to_jsonb(NEW) - 'last_used_at') THEN
        PERFORM pg_notify('authz_changes', 'client:' || NEW.id);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER clients_notify AFTER INSERT OR UPDATE OR DELETE ON clients
    FOR EACH ROW EXECUTE FUNCTION authz_notify_client();

CREATE FUNCTION authz_notify_keys() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('authz_changes', 'keys');
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

-- Per row, so a statement that changes nothing (every reload tries to promote due keys)
-- announces nothing: otherwise each reload would make every replica reload again. Identical
-- notifications of one transaction are delivered once.
CREATE TRIGGER signing_keys_notify AFTER INSERT OR UPDATE OR DELETE ON signing_keys
    FOR EACH ROW EXECUTE FUNCTION authz_notify_keys();

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
