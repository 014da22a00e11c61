//! `IdJagLinkStore` on SQL: one row per (issuer, subject); removed with one
//! `DELETE … RETURNING`, so of two concurrent removals one reports the link.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::Result;
use crate::store::sql::SqlStore;
use crate::store::{IdJagLink, IdJagLinkStore};

/// `SELECT` of links with their usernames, then `$tail` (a literal: no dynamic SQL).
macro_rules! select_links {
    ($tail:literal) => {
        concat!(
            "SELECT l.issuer, l.subject, l.user_id, u.username, l.created_at, l.created_by \
             FROM id_jag_links l JOIN users u ON u.id = l.user_id ",
            $tail
        )
    };
}

fn link(r: &AnyRow) -> Result<IdJagLink> {
    Ok(IdJagLink {
        issuer: r.try_get("issuer")?,
        subject: r.try_get("subject")?,
        user_id: r.try_get("user_id")?,
        username: r.try_get("username")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
    })
}

#[async_trait]
impl IdJagLinkStore for SqlStore {
    async fn add_id_jag_link(
        &self,
        issuer: &str,
        subject: &str,
        user_id: &str,
        created_by: &str,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO id_jag_links (issuer, subject, user_id, created_at, created_by) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(issuer)
        .bind(subject)
        .bind(user_id)
        .bind(now)
        .bind(created_by)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            crate::store::sql::conflict(e, format!("a link of {subject:?} at {issuer}"))
        })?;
        Ok(())
    }

    async fn id_jag_link(&self, issuer: &str, subject: &str) -> Result<Option<IdJagLink>> {
        let row = sqlx::query(select_links!("WHERE l.issuer = $1 AND l.subject = $2"))
            .bind(issuer)
            .bind(subject)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(link).transpose()
    }

    async fn remove_id_jag_link(&self, issuer: &str, subject: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            "DELETE FROM id_jag_links WHERE issuer = $1 AND subject = $2 RETURNING user_id",
        )
        .bind(issuer)
        .bind(subject)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            Some(r) => Some(r.try_get("user_id")?),
            None => None,
        })
    }

    async fn id_jag_links(&self, issuer: Option<&str>) -> Result<Vec<IdJagLink>> {
        let rows = match issuer {
            Some(i) => {
                sqlx::query(select_links!(
                    "WHERE l.issuer = $1 ORDER BY l.issuer, l.subject"
                ))
                .bind(i)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(select_links!("ORDER BY l.issuer, l.subject"))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        rows.iter().map(link).collect()
    }
}
