//! `FederationStore` on SQL: links keyed by (provider, subject); a round trip is spent with one
//! `DELETE … RETURNING`, so a `state` works once.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::Result;
use crate::store::sql::SqlStore;
use crate::store::{FederatedIdentity, FederationStore, SealedUpstreamTokens, UpstreamLogin};

/// `SELECT` of links, then `$tail` (a literal: no dynamic SQL).
macro_rules! select_identities {
    ($tail:literal) => {
        concat!(
            "SELECT provider, subject, user_id, email, created_at, last_login_at \
             FROM federated_identities ",
            $tail
        )
    };
}

fn identity(r: &AnyRow) -> Result<FederatedIdentity> {
    Ok(FederatedIdentity {
        provider: r.try_get("provider")?,
        subject: r.try_get("subject")?,
        user_id: r.try_get("user_id")?,
        email: r.try_get("email")?,
        created_at: r.try_get("created_at")?,
        last_login_at: r.try_get("last_login_at")?,
    })
}

fn login(r: &AnyRow) -> Result<UpstreamLogin> {
    Ok(UpstreamLogin {
        provider: r.try_get("provider")?,
        browser_hash: r.try_get("browser_hash")?,
        nonce_hash: r.try_get("nonce_hash")?,
        verifier_enc: r.try_get("verifier_enc")?,
        target: r.try_get("target")?,
        link_user_id: r.try_get("link_user_id")?,
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
    })
}

fn tokens(r: &AnyRow) -> Result<SealedUpstreamTokens> {
    Ok(SealedUpstreamTokens {
        user_id: r.try_get("user_id")?,
        provider: r.try_get("provider")?,
        subject: r.try_get("subject")?,
        access_enc: r.try_get("access_enc")?,
        refresh_enc: r.try_get("refresh_enc")?,
        expires_at: r.try_get("expires_at")?,
        scope: r.try_get("scope")?,
        updated_at: r.try_get("updated_at")?,
    })
}

#[async_trait]
impl FederationStore for SqlStore {
    async fn put_upstream_tokens(&self, t: &SealedUpstreamTokens) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO upstream_tokens \
             (user_id, provider, subject, access_enc, refresh_enc, expires_at, scope, updated_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE EXISTS (SELECT 1 \
             FROM federated_identities WHERE user_id = $1 AND provider = $2 AND subject = $3) \
             ON CONFLICT (user_id, provider) DO UPDATE SET subject = excluded.subject, \
             access_enc = excluded.access_enc, refresh_enc = excluded.refresh_enc, \
             expires_at = excluded.expires_at, scope = excluded.scope, \
             updated_at = excluded.updated_at",
        )
        .bind(&t.user_id)
        .bind(&t.provider)
        .bind(&t.subject)
        .bind(&t.access_enc)
        .bind(&t.refresh_enc)
        .bind(t.expires_at)
        .bind(&t.scope)
        .bind(t.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn replace_upstream_tokens(
        &self,
        t: &SealedUpstreamTokens,
        read_access_enc: &str,
    ) -> Result<bool> {
        let r = sqlx::query(
            "UPDATE upstream_tokens SET access_enc = $1, refresh_enc = $2, expires_at = $3, \
             scope = $4, updated_at = $5 \
             WHERE user_id = $6 AND provider = $7 AND access_enc = $8",
        )
        .bind(&t.access_enc)
        .bind(&t.refresh_enc)
        .bind(t.expires_at)
        .bind(&t.scope)
        .bind(t.updated_at)
        .bind(&t.user_id)
        .bind(&t.provider)
        .bind(read_access_enc)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn upstream_tokens(
        &self,
        user_id: &str,
        provider: &str,
    ) -> Result<Option<SealedUpstreamTokens>> {
        let row = sqlx::query(
            "SELECT user_id, provider, subject, access_enc, refresh_enc, expires_at, scope, \
             updated_at FROM upstream_tokens WHERE user_id = $1 AND provider = $2",
        )
        .bind(user_id)
        .bind(provider)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(tokens).transpose()
    }

    async fn take_upstream_tokens(
        &self,
        user_id: &str,
        provider: Option<&str>,
    ) -> Result<Vec<SealedUpstreamTokens>> {
        let rows = sqlx::query(
            "DELETE FROM upstream_tokens WHERE user_id = $1 AND ($2 IS NULL OR provider = $2) \
             RETURNING user_id, provider, subject, access_enc, refresh_enc, expires_at, scope, \
             updated_at",
        )
        .bind(user_id)
        .bind(provider)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(tokens).collect()
    }

    async fn put_upstream_login(
        &self,
        state_hash: &str,
        l: &UpstreamLogin,
        now: i64,
    ) -> Result<()> {
        sqlx::query("DELETE FROM upstream_logins WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO upstream_logins (state_hash, provider, browser_hash, nonce_hash, \
             verifier_enc, target, link_user_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(state_hash)
        .bind(&l.provider)
        .bind(&l.browser_hash)
        .bind(&l.nonce_hash)
        .bind(&l.verifier_enc)
        .bind(&l.target)
        .bind(&l.link_user_id)
        .bind(l.created_at)
        .bind(l.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn take_upstream_login(
        &self,
        state_hash: &str,
        now: i64,
    ) -> Result<Option<UpstreamLogin>> {
        let row = sqlx::query(
            "DELETE FROM upstream_logins WHERE state_hash = $1 AND expires_at > $2 \
             RETURNING provider, browser_hash, nonce_hash, verifier_enc, target, link_user_id, \
             created_at, expires_at",
        )
        .bind(state_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(login).transpose()
    }

    async fn federated_identity(
        &self,
        provider: &str,
        subject: &str,
    ) -> Result<Option<FederatedIdentity>> {
        let row = sqlx::query(select_identities!("WHERE provider = $1 AND subject = $2"))
            .bind(provider)
            .bind(subject)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(identity).transpose()
    }

    async fn federated_identity_by_sid(
        &self,
        provider: &str,
        sid: &str,
    ) -> Result<Option<FederatedIdentity>> {
        let row = sqlx::query(select_identities!(
            "WHERE provider = $1 AND last_sid = $2 ORDER BY last_login_at DESC"
        ))
        .bind(provider)
        .bind(sid)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(identity).transpose()
    }

    async fn add_federated_identity(&self, id: &FederatedIdentity) -> Result<()> {
        sqlx::query(
            "INSERT INTO federated_identities \
             (provider, subject, user_id, email, created_at, last_login_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id.provider)
        .bind(&id.subject)
        .bind(&id.user_id)
        .bind(&id.email)
        .bind(id.created_at)
        .bind(id.last_login_at)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            crate::store::sql::conflict(e, format!("a link of {:?} at {}", id.subject, id.provider))
        })?;
        Ok(())
    }

    async fn touch_federated_identity(
        &self,
        provider: &str,
        subject: &str,
        email: Option<&str>,
        sid: Option<&str>,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE federated_identities SET last_login_at = $1, email = $2, last_sid = $3 \
             WHERE provider = $4 AND subject = $5",
        )
        .bind(now)
        .bind(email)
        .bind(sid)
        .bind(provider)
        .bind(subject)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn federated_identities_of(&self, user_id: &str) -> Result<Vec<FederatedIdentity>> {
        let rows = sqlx::query(select_identities!(
            "WHERE user_id = $1 ORDER BY provider, subject"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(identity).collect()
    }

    async fn remove_federated_identity(
        &self,
        user_id: &str,
        provider: &str,
        subject: &str,
    ) -> Result<bool> {
        let r = sqlx::query(
            "DELETE FROM federated_identities WHERE user_id = $1 AND provider = $2 \
             AND subject = $3",
        )
        .bind(user_id)
        .bind(provider)
        .bind(subject)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn spend_logout_token(&self, jti_hash: &str, expires_at: i64, now: i64) -> Result<bool> {
        sqlx::query("DELETE FROM spent_logout_tokens WHERE expires_at <= $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        let r = sqlx::query(
            "INSERT INTO spent_logout_tokens (jti_hash, expires_at) VALUES ($1, $2) \
             ON CONFLICT (jti_hash) DO NOTHING",
        )
        .bind(jti_hash)
        .bind(expires_at)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn federated_user_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query(
            "SELECT provider, COUNT(DISTINCT user_id) AS n FROM federated_identities \
             GROUP BY provider ORDER BY provider",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("provider")?, r.try_get("n")?)))
            .collect()
    }
}
