//! `SessionStore`, `AuthCodeStore` and `ConsentStore` on SQL. Codes are spent with one
//! conditional UPDATE, so of two concurrent redemptions at most one wins. Ending a session or
//! revoking a grant updates the session row first and the refresh tokens after, in one
//! transaction: a rotation of that grant (which locks the same row first) either finishes
//! before, and its successor is revoked too, or starts after, and finds the grant ended.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::Result;
use crate::store::sql::SqlStore;
use crate::store::{
    AuthCode, AuthCodeStore, ConsentStore, GrantStatus, RedeemOutcome, Session, SessionEnd,
    SessionStore,
};

macro_rules! session_columns {
    () => {
        "id_hash, sid, user_id, auth_time, created_at, last_seen_at, expires_at, ended_at, \
         client_id, amr, user_agent, ip"
    };
}

macro_rules! code_columns {
    () => {
        "code_hash, client_id, user_id, sid, redirect_uri, code_challenge, resource, scope, \
         nonce, auth_time, created_at, expires_at, used_at, family_id, dpop_jkt"
    };
}

pub(super) fn session(row: &AnyRow) -> Result<Session> {
    Ok(Session {
        id_hash: row.try_get("id_hash")?,
        sid: row.try_get("sid")?,
        user_id: row.try_get("user_id")?,
        auth_time: row.try_get("auth_time")?,
        created_at: row.try_get("created_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
        expires_at: row.try_get("expires_at")?,
        ended_at: row.try_get("ended_at")?,
        client_id: row.try_get("client_id")?,
        amr: crate::store::sql::words(&row.try_get::<String, _>("amr")?),
        user_agent: row.try_get("user_agent")?,
        ip: row.try_get("ip")?,
    })
}

fn code(row: &AnyRow) -> Result<AuthCode> {
    Ok(AuthCode {
        code_hash: row.try_get("code_hash")?,
        client_id: row.try_get("client_id")?,
        user_id: row.try_get("user_id")?,
        sid: row.try_get("sid")?,
        redirect_uri: row.try_get("redirect_uri")?,
        code_challenge: row.try_get("code_challenge")?,
        resource: row.try_get("resource")?,
        scope: row.try_get("scope")?,
        nonce: row.try_get("nonce")?,
        auth_time: row.try_get("auth_time")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        used_at: row.try_get("used_at")?,
        family_id: row.try_get("family_id")?,
        dpop_jkt: row.try_get("dpop_jkt")?,
    })
}

#[async_trait]
impl SessionStore for SqlStore {
    async fn create_session(&self, s: &Session, password_hash: &str, epoch: i64) -> Result<bool> {
        // One statement: on SQLite writers are serialised, so the user row read here is the
        // one the insert commits against; on PostgreSQL `FOR SHARE` waits for a remedy that
        // updated the row and re-reads it (the new hash or `disabled_at` then refuses), and
        // holds a remedy back until this insert commits (it then ends this session too).
        let lock = match self.backend {
            crate::store::sql::Backend::Postgres => " FOR SHARE",
            crate::store::sql::Backend::Sqlite => "",
        };
        let sql = format!(
            concat!(
                "INSERT INTO sessions (",
                session_columns!(),
                ") SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12 FROM users \
                 WHERE id = $3 AND password_hash = $13 AND factors_epoch = $14 \
                 AND disabled_at IS NULL{}"
            ),
            lock
        );
        let stored = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&s.id_hash)
            .bind(&s.sid)
            .bind(&s.user_id)
            .bind(s.auth_time)
            .bind(s.created_at)
            .bind(s.last_seen_at)
            .bind(s.expires_at)
            .bind(s.ended_at)
            .bind(s.client_id.as_deref())
            .bind(s.amr.join(" "))
            .bind(s.user_agent.as_deref())
            .bind(s.ip.as_deref())
            .bind(password_hash)
            .bind(epoch)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(stored == 1)
    }

    async fn get_session(&self, id_hash: &str) -> Result<Option<Session>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE id_hash = $1 AND ended_at IS NULL"
        ))
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(session).transpose()
    }

    async fn get_session_by_sid(&self, sid: &str) -> Result<Option<Session>> {
        let row = sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE sid = $1"
        ))
        .bind(sid)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(session).transpose()
    }

    async fn touch_session(&self, id_hash: &str, now: i64) -> Result<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2")
            .bind(now)
            .bind(id_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn end_session(&self, sid: &str, now: i64) -> Result<SessionEnd> {
        let mut tx = self.write_tx().await?;
        let ended =
            sqlx::query("UPDATE sessions SET ended_at = $1 WHERE sid = $2 AND ended_at IS NULL")
                .bind(now)
                .bind(sid)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
        let revoked = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE sid = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(sid)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(SessionEnd {
            ended,
            refresh_tokens_revoked: revoked,
        })
    }

    async fn revoke_grant(
        &self,
        sid: &str,
        client_id: &str,
        now: i64,
        keep_until: i64,
    ) -> Result<u64> {
        let mut tx = self.write_tx().await?;
        // The session row first: the lock a rotation of this grant takes.
        sqlx::query("UPDATE sessions SET last_seen_at = last_seen_at WHERE sid = $1")
            .bind(sid)
            .execute(&mut *tx)
            .await?;
        let revoked = sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $1 \
             WHERE sid = $2 AND client_id = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(sid)
        .bind(client_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(
            "INSERT INTO revoked_grants (sid, client_id, revoked_at, expires_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (sid, client_id) \
             DO UPDATE SET revoked_at = $3, expires_at = $4",
        )
        .bind(sid)
        .bind(client_id)
        .bind(now)
        .bind(keep_until)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(revoked)
    }

    async fn grant_status(&self, sid: &str, client_id: &str) -> Result<Option<GrantStatus>> {
        let row = sqlx::query(
            "SELECT s.*, g.revoked_at AS grant_revoked_at \
             FROM sessions s LEFT JOIN revoked_grants g ON g.sid = s.sid AND g.client_id = $2 \
             WHERE s.sid = $1",
        )
        .bind(sid)
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(GrantStatus {
            session: session(&row)?,
            grant_revoked_at: row.try_get("grant_revoked_at")?,
        }))
    }

    async fn delete_sessions_before(&self, ts: i64) -> Result<u64> {
        let r = sqlx::query("DELETE FROM sessions WHERE expires_at < $1 OR ended_at < $1")
            .bind(ts)
            .execute(&self.pool)
            .await?;
        let g = sqlx::query("DELETE FROM revoked_grants WHERE expires_at < $1")
            .bind(ts)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() + g.rows_affected())
    }
}

#[async_trait]
impl AuthCodeStore for SqlStore {
    async fn create_code(&self, c: &AuthCode) -> Result<()> {
        sqlx::query(concat!(
            "INSERT INTO auth_codes (",
            code_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ))
        .bind(&c.code_hash)
        .bind(&c.client_id)
        .bind(&c.user_id)
        .bind(&c.sid)
        .bind(&c.redirect_uri)
        .bind(&c.code_challenge)
        .bind(&c.resource)
        .bind(&c.scope)
        .bind(c.nonce.as_deref())
        .bind(c.auth_time)
        .bind(c.created_at)
        .bind(c.expires_at)
        .bind(c.used_at)
        .bind(c.family_id.as_deref())
        .bind(c.dpop_jkt.as_deref())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn redeem_code(&self, code_hash: &str, now: i64) -> Result<RedeemOutcome> {
        let claimed = sqlx::query(
            "UPDATE auth_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL",
        )
        .bind(now)
        .bind(code_hash)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query(concat!(
            "SELECT ",
            code_columns!(),
            " FROM auth_codes WHERE code_hash = $1"
        ))
        .bind(code_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(found) = row.as_ref().map(code).transpose()? else {
            return Ok(RedeemOutcome::NotFound);
        };
        Ok(if claimed.rows_affected() == 1 {
            RedeemOutcome::Redeemed(Box::new(found))
        } else {
            RedeemOutcome::Replayed(Box::new(found))
        })
    }

    async fn set_code_family(&self, code_hash: &str, family_id: &str) -> Result<()> {
        sqlx::query("UPDATE auth_codes SET family_id = $1 WHERE code_hash = $2")
            .bind(family_id)
            .bind(code_hash)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_codes_expired_before(&self, ts: i64) -> Result<u64> {
        let r = sqlx::query("DELETE FROM auth_codes WHERE expires_at < $1")
            .bind(ts)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected())
    }
}

#[async_trait]
impl ConsentStore for SqlStore {
    async fn get_consent(
        &self,
        user_id: &str,
        client_id: &str,
        resource: &str,
    ) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2 AND resource = $3",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(resource)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get("scope")).transpose()?)
    }

    async fn put_consent(
        &self,
        user_id: &str,
        client_id: &str,
        resource: &str,
        scope: &str,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO consents (user_id, client_id, resource, scope, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) \
             ON CONFLICT (user_id, client_id, resource) DO UPDATE SET scope = $4, updated_at = $5",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(resource)
        .bind(scope)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
