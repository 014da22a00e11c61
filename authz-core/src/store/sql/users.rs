//! `UserStore` on SQL. Disabling a user and resetting a password end the user's grants in the
//! same transaction: sessions first (the row lock every rotation of a grant takes), then
//! refresh tokens, then (reset) API keys — so no rotation running at the same moment can leave a
//! successor behind. The user's passkeys go in that transaction too (disabling; a reset when
//! `remove_passkeys`), so no credential outlives the remedy. Those statements
//! (`end_sessions_in`) also serve an administrator's two-factor reset and removing a passkey.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::Result;
use crate::store::sql::{SqlStore, conflict, words};
use crate::store::{AccountRevocation, GrantsEnded, NewCredentials, User, UserStore};

macro_rules! columns {
    () => {
        "id, username, password_hash, roles, email, disabled_at, credentials_changed_at, \
         password_change_required, factors_epoch, created_at, updated_at, display_name"
    };
}

fn user(row: &AnyRow) -> Result<User> {
    Ok(User {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        password_hash: row.try_get("password_hash")?,
        roles: words(&row.try_get::<String, _>("roles")?),
        email: row.try_get("email")?,
        disabled_at: row.try_get("disabled_at")?,
        credentials_changed_at: row.try_get("credentials_changed_at")?,
        password_change_required: row.try_get::<i64, _>("password_change_required")? != 0,
        factors_epoch: row.try_get("factors_epoch")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        display_name: row.try_get("display_name")?,
    })
}

#[async_trait]
impl UserStore for SqlStore {
    async fn create_user(&self, u: &User) -> Result<()> {
        sqlx::query(concat!(
            "INSERT INTO users (",
            columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        ))
        .bind(&u.id)
        .bind(&u.username)
        .bind(&u.password_hash)
        .bind(u.roles.join(" "))
        .bind(u.email.as_deref())
        .bind(u.disabled_at)
        .bind(u.credentials_changed_at)
        .bind(i64::from(u.password_change_required))
        .bind(u.factors_epoch)
        .bind(u.created_at)
        .bind(u.updated_at)
        .bind(u.display_name.as_deref())
        .execute(&self.pool)
        .await
        .map_err(|e| conflict(e, format!("user {:?}", u.username)))?;
        Ok(())
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>> {
        let row = sqlx::query(concat!("SELECT ", columns!(), " FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user).transpose()
    }

    async fn get_user_by_username(&self, username: &str) -> Result<Option<User>> {
        // No stored name holds a NUL (PostgreSQL's text refuses one: the query would fail).
        if username.contains('\0') {
            return Ok(None);
        }
        let row = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM users WHERE username = $1"
        ))
        .bind(username)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user).transpose()
    }

    async fn users_with_email(&self, email: &str, limit: i64) -> Result<Vec<User>> {
        // `lower()` on both sides: the expression index `users_email_lower` (migration 0017).
        // The argument is lowered here (ASCII) so both backends compare the same way.
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM users WHERE lower(email) = $1 ORDER BY username LIMIT $2"
        ))
        .bind(email.to_ascii_lowercase())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user).collect()
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM users ORDER BY username"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user).collect()
    }

    async fn set_user_roles(&self, id: &str, roles: &[String], now: i64) -> Result<bool> {
        let r = sqlx::query("UPDATE users SET roles = $1, updated_at = $2 WHERE id = $3")
            .bind(roles.join(" "))
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn disable_user(&self, id: &str, now: i64) -> Result<AccountRevocation> {
        let mut tx = self.write_tx().await?;
        let r = sqlx::query(
            "UPDATE users SET disabled_at = COALESCE(disabled_at, $1), updated_at = $1 \
             WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        end_user_grants(tx, r.rows_affected() == 1, id, now, Lasting::PASSKEYS).await
    }

    async fn enable_user(&self, id: &str, now: i64) -> Result<bool> {
        let r = sqlx::query("UPDATE users SET disabled_at = NULL, updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn reset_credentials(
        &self,
        id: &str,
        new: &NewCredentials<'_>,
        now: i64,
    ) -> Result<AccountRevocation> {
        let mut tx = self.write_tx().await?;
        let mut q = sqlx::query(match new.replaces {
            None => {
                "UPDATE users SET password_hash = $1, credentials_changed_at = $2, \
                 updated_at = $2, password_change_required = $3 WHERE id = $4"
            }
            // Compare-and-set: of two changes from the same password, one wins.
            Some(_) => {
                "UPDATE users SET password_hash = $1, credentials_changed_at = $2, \
                 updated_at = $2, password_change_required = $3 \
                 WHERE id = $4 AND password_hash = $5"
            }
        })
        .bind(new.password_hash)
        .bind(now)
        .bind(i64::from(new.change_required))
        .bind(id);
        if let Some(old) = new.replaces {
            q = q.bind(old);
        }
        let found = q.execute(&mut *tx).await?.rows_affected() == 1;
        if !found && new.replaces.is_some() {
            return Ok(AccountRevocation::default());
        }
        // A reset that removes the passkeys removes the linked upstream identities with them:
        // a takeover's planted sign-in methods do not outlive it.
        let lasting = Lasting {
            api_keys: new.revoke_api_keys,
            passkeys: new.remove_passkeys,
            identities: new.remove_passkeys,
        };
        end_user_grants(tx, found, id, now, lasting).await
    }

    async fn set_user_display_name(&self, id: &str, name: Option<&str>, now: i64) -> Result<bool> {
        let r = sqlx::query("UPDATE users SET display_name = $1, updated_at = $2 WHERE id = $3")
            .bind(name)
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn set_user_email(&self, id: &str, email: Option<&str>, now: i64) -> Result<bool> {
        let r = sqlx::query("UPDATE users SET email = $1, updated_at = $2 WHERE id = $3")
            .bind(email)
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }
}

/// Inside a remedy's transaction `tx`: end every session of `user_id` but `keep` (the
/// session making the change, when it is the user's own), then revoke every refresh token but
/// those issued through `keep` — sessions first: they are the rows a concurrent rotation of a
/// grant locks, so no rotation running at the same moment leaves a successor behind. The one
/// place these statements are written: disabling, a password reset, an administrator's
/// two-factor reset and removing a passkey all come here.
pub(super) async fn end_sessions_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: &str,
    now: i64,
    keep: Option<&str>,
) -> Result<GrantsEnded> {
    // A sid is never empty: "" keeps none.
    let keep = keep.unwrap_or_default();
    let sessions_ended = sqlx::query(
        "UPDATE sessions SET ended_at = $1 WHERE user_id = $2 AND ended_at IS NULL \
         AND sid <> $3",
    )
    .bind(now)
    .bind(user_id)
    .bind(keep)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    let refresh_tokens_revoked = sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL \
         AND (sid IS NULL OR sid <> $3)",
    )
    .bind(now)
    .bind(user_id)
    .bind(keep)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(GrantsEnded {
        sessions_ended,
        refresh_tokens_revoked,
    })
}

/// After the user row changed in `tx`: end every session of the user, then revoke every
/// refresh token (sessions first: they are the rows a concurrent rotation locks), end the
/// sign-ins in progress, with `with_keys` also revoke every API key, with `with_passkeys`
/// remove every passkey (after the sessions: a registration takes its session's row before it
/// stores a passkey, so one finishing at the same moment either is seen here or finds its
/// session ended); then commit.
/// Which lasting credentials a remedy ends besides sessions and refresh tokens.
#[derive(Debug, Clone, Copy)]
struct Lasting {
    api_keys: bool,
    passkeys: bool,
    /// Linked upstream identities (federation).
    identities: bool,
}

impl Lasting {
    /// Disabling: the passkeys go; links stay, inert while the user is disabled (an upstream
    /// sign-in of a disabled user is refused).
    const PASSKEYS: Self = Self {
        api_keys: false,
        passkeys: true,
        identities: false,
    };
}

async fn end_user_grants(
    mut tx: sqlx::Transaction<'_, sqlx::Any>,
    found: bool,
    user_id: &str,
    now: i64,
    lasting: Lasting,
) -> Result<AccountRevocation> {
    let GrantsEnded {
        sessions_ended,
        refresh_tokens_revoked,
    } = end_sessions_in(&mut tx, user_id, now, None).await?;
    // Sign-ins half done with the old credentials end too (issue 24 item 2), and links to
    // upstream identities begun before (issue 26 review F1).
    crate::store::sql::signin::end_pending_in(&mut tx, user_id).await?;
    sqlx::query("DELETE FROM upstream_logins WHERE link_user_id = $1")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    let mut api_keys_revoked = Vec::new();
    if lasting.api_keys {
        let rows = sqlx::query(
            "UPDATE clients SET revoked_at = $1, updated_at = $1 \
             WHERE owner_id = $2 AND revoked_at IS NULL RETURNING id",
        )
        .bind(now)
        .bind(user_id)
        .fetch_all(&mut *tx)
        .await?;
        for r in &rows {
            api_keys_revoked.push(r.try_get::<String, _>("id")?);
        }
    }
    let passkeys_removed = if lasting.passkeys {
        super::factors::delete_passkeys(&mut tx, user_id).await?
    } else {
        0
    };
    let identities_unlinked = if lasting.identities {
        // With the links, the provider tokens held through them (the vault). Not the link to
        // the directory (`config::ldap::PROVIDER`): it is the directory's hold on the account,
        // which a reset must not loosen (issue 26 LDAP review F2).
        sqlx::query("DELETE FROM upstream_tokens WHERE user_id = $1")
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM federated_identities WHERE user_id = $1 AND provider <> 'ldap'")
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
    } else {
        0
    };
    tx.commit().await?;
    Ok(AccountRevocation {
        found,
        sessions_ended,
        refresh_tokens_revoked,
        api_keys_revoked,
        passkeys_removed,
        identities_unlinked,
        password_hash: None,
    })
}
