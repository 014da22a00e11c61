//! `ClientStore` on SQL.

use async_trait::async_trait;
use shared::ScopeSet;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::{Error, Result};
use crate::store::sql::{SqlStore, conflict, json_list, parse_col, uri_list, words};
use crate::store::{Client, ClientSettings, ClientStore, DYNAMIC_CLIENTS, Registration};

macro_rules! columns {
    () => {
        "id, name, secret_hash, auth_method, grant_types, redirect_uris, scopes, \
                       resources, always_issue_refresh, post_logout_redirect_uris, skip_consent, \
                       registration, owner_id, expires_at, revoked_at, may_introspect, \
                       serves_resource, created_at, updated_at, metadata_fetched_at, \
                       metadata_expires_at, jwks_uri, jwks, last_used_at, also_public, dpop_bound, \
                       require_par"
    };
}

fn client(row: &AnyRow) -> Result<Client> {
    let grants: String = row.try_get("grant_types")?;
    Ok(Client {
        id: row.try_get("id")?,
        secret_hash: row.try_get("secret_hash")?,
        settings: ClientSettings {
            name: row.try_get("name")?,
            auth_method: parse_col(row, "auth_method")?,
            grant_types: words(&grants)
                .iter()
                .map(|g| g.parse().map_err(Error::internal))
                .collect::<Result<_>>()?,
            redirect_uris: uri_list(row, "redirect_uris")?,
            scopes: ScopeSet::parse(&row.try_get::<String, _>("scopes")?)
                .map_err(|e| Error::internal(format!("corrupt client scopes: {e}")))?,
            resources: uri_list(row, "resources")?,
            always_issue_refresh: row.try_get::<i64, _>("always_issue_refresh")? != 0,
            post_logout_redirect_uris: uri_list(row, "post_logout_redirect_uris")?,
            skip_consent: row.try_get::<i64, _>("skip_consent")? != 0,
            registration: parse_col(row, "registration")?,
            owner_id: row.try_get("owner_id")?,
            expires_at: row.try_get("expires_at")?,
            may_introspect: row.try_get::<i64, _>("may_introspect")? != 0,
            serves_resource: row.try_get("serves_resource")?,
            jwks_uri: row.try_get("jwks_uri")?,
            jwks: row.try_get("jwks")?,
            also_public: row.try_get::<i64, _>("also_public")? != 0,
            dpop_bound_access_tokens: row.try_get::<i64, _>("dpop_bound")? != 0,
            require_pushed_authorization_requests: row.try_get::<i64, _>("require_par")? != 0,
        },
        revoked_at: row.try_get("revoked_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        metadata_fetched_at: row.try_get("metadata_fetched_at")?,
        metadata_expires_at: row.try_get("metadata_expires_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

async fn insert_client(conn: &mut sqlx::AnyConnection, c: &Client) -> Result<()> {
    let grants: Vec<&str> = c.grant_types.iter().map(|g| g.as_str()).collect();
    sqlx::query(concat!(
        "INSERT INTO clients (",
        columns!(),
        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27)"
    ))
    .bind(&c.id)
    .bind(&c.name)
    .bind(c.secret_hash.as_deref())
    .bind(c.auth_method.as_str())
    .bind(grants.join(" "))
    .bind(json_list(&c.redirect_uris))
    .bind(c.scopes.to_string())
    .bind(json_list(&c.resources))
    .bind(i64::from(c.always_issue_refresh))
    .bind(json_list(&c.post_logout_redirect_uris))
    .bind(i64::from(c.skip_consent))
    .bind(c.registration.as_str())
    .bind(c.owner_id.as_deref())
    .bind(c.expires_at)
    .bind(c.revoked_at)
    .bind(i64::from(c.may_introspect))
    .bind(c.serves_resource.as_deref())
    .bind(c.created_at)
    .bind(c.updated_at)
    .bind(c.metadata_fetched_at)
    .bind(c.metadata_expires_at)
    .bind(c.jwks_uri.as_deref())
    .bind(c.jwks.as_deref())
    .bind(c.last_used_at)
    .bind(i64::from(c.also_public))
    .bind(i64::from(c.dpop_bound_access_tokens))
    .bind(i64::from(c.require_pushed_authorization_requests))
    .execute(&mut *conn)
    .await
    .map_err(|e| conflict(e, format!("client {:?}", c.id)))?;
    Ok(())
}

#[async_trait]
impl ClientStore for SqlStore {
    async fn create_client(&self, c: &Client) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        insert_client(&mut conn, c).await
    }

    async fn create_client_within(&self, c: &Client, counter: &str, cap: i64) -> Result<bool> {
        // One transaction: the counter moves only with the insert, and the conditional UPDATE
        // takes the row lock, so concurrent registrations cannot both pass the cap.
        let mut tx = self.write_tx().await?;
        let counted =
            sqlx::query("UPDATE counters SET value = value + 1 WHERE name = $1 AND value < $2")
                .bind(counter)
                .bind(cap)
                .execute(&mut *tx)
                .await?;
        if counted.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_client(&mut tx, c).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn create_client_in_session(&self, c: &Client, sid: &str) -> Result<bool> {
        let mut tx = self.write_tx().await?;
        // The session's row first, as `add_passkey` does: a password reset or disabling
        // (which ends the sessions before it revokes the owner's keys) either sees this client
        // or makes this find the session ended.
        let live = sqlx::query(
            "UPDATE sessions SET last_seen_at = last_seen_at \
             WHERE sid = $1 AND user_id = $2 AND ended_at IS NULL",
        )
        .bind(sid)
        .bind(c.owner_id.as_deref())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if live != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_client(&mut tx, c).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn put_metadata_client(&self, c: &Client) -> Result<bool> {
        let grants: Vec<&str> = c.grant_types.iter().map(|g| g.as_str()).collect();
        // A first fetch inserts; a refetch replaces what the document says, and only on a
        // metadata-document row (an administrator's client of the same id is never touched).
        let updated = sqlx::query(
            "UPDATE clients SET name = $1, auth_method = $2, grant_types = $3, \
             redirect_uris = $4, scopes = $5, post_logout_redirect_uris = $6, \
             metadata_fetched_at = $7, metadata_expires_at = $8, updated_at = $9, \
             jwks_uri = $10, jwks = $11, also_public = $12, dpop_bound = $13, \
             require_par = $14 WHERE id = $15 AND registration = 'metadata_document'",
        )
        .bind(&c.name)
        .bind(c.auth_method.as_str())
        .bind(grants.join(" "))
        .bind(json_list(&c.redirect_uris))
        .bind(c.scopes.to_string())
        .bind(json_list(&c.post_logout_redirect_uris))
        .bind(c.metadata_fetched_at)
        .bind(c.metadata_expires_at)
        .bind(c.updated_at)
        .bind(c.jwks_uri.as_deref())
        .bind(c.jwks.as_deref())
        .bind(i64::from(c.also_public))
        .bind(i64::from(c.dpop_bound_access_tokens))
        .bind(i64::from(c.require_pushed_authorization_requests))
        .bind(&c.id)
        .execute(&self.pool)
        .await?;
        if updated.rows_affected() == 1 {
            return Ok(true);
        }
        match self.create_client(c).await {
            Ok(()) => Ok(true),
            // Created meanwhile (by another request or replica), or an administrator's client.
            Err(Error::Conflict(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn touch_client(&self, id: &str, now: i64) -> Result<()> {
        // At most hourly per client, and only where pruning reads it.
        sqlx::query(
            "UPDATE clients SET last_used_at = $1 WHERE id = $2 AND registration <> 'admin' \
             AND (last_used_at IS NULL OR last_used_at < $3)",
        )
        .bind(now)
        .bind(id)
        .bind(now - 3600)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn prunable_clients(
        &self,
        unused_before: i64,
        idle_before: i64,
        now: i64,
    ) -> Result<Vec<Client>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM clients c WHERE registration = 'dynamic' AND (\
             (last_used_at IS NULL AND created_at < $1) \
             OR (last_used_at < $2 AND NOT EXISTS (SELECT 1 FROM refresh_tokens r \
                 WHERE r.client_id = c.id AND r.revoked_at IS NULL AND r.used_at IS NULL \
                 AND r.expires_at > $3))) ORDER BY id"
        ))
        .bind(unused_before)
        .bind(idle_before)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(client).collect()
    }

    async fn delete_client_assertions_before(&self, ts: i64) -> Result<u64> {
        // Expired ones can never be replayed (their `exp` has passed).
        let r = sqlx::query("DELETE FROM client_assertions WHERE expires_at < $1")
            .bind(ts)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }

    async fn use_client_assertion(
        &self,
        client_id: &str,
        jti_hash: &str,
        expires_at: i64,
    ) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO client_assertions (jti_hash, client_id, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (jti_hash) DO NOTHING",
        )
        .bind(jti_hash)
        .bind(client_id)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn get_client(&self, id: &str) -> Result<Option<Client>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM clients WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(client).transpose()
    }

    async fn list_clients(&self) -> Result<Vec<Client>> {
        let rows = sqlx::query(concat!("SELECT ", columns!(), " FROM clients ORDER BY id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(client).collect()
    }

    async fn set_client_secret(&self, id: &str, secret_hash: &str, now: i64) -> Result<bool> {
        let r = sqlx::query("UPDATE clients SET secret_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(secret_hash)
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn delete_client(&self, id: &str) -> Result<bool> {
        // refresh_tokens go with it (ON DELETE CASCADE); a self-registered client leaves the
        // count of live registrations in the same transaction.
        let mut tx = self.write_tx().await?;
        let kind: Option<String> = sqlx::query("SELECT registration FROM clients WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.try_get("registration"))
            .transpose()?;
        let r = sqlx::query("DELETE FROM clients WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if kind.as_deref() == Some(Registration::Dynamic.as_str()) {
            sqlx::query("UPDATE counters SET value = value - 1 WHERE name = $1 AND value > 0")
                .bind(DYNAMIC_CLIENTS)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    async fn list_clients_owned_by(&self, owner_id: &str) -> Result<Vec<Client>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM clients WHERE owner_id = $1 ORDER BY created_at DESC, id"
        ))
        .bind(owner_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(client).collect()
    }

    async fn revoke_client(&self, id: &str, now: i64) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE clients SET revoked_at = $1, updated_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }
}
