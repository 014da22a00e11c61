//! `SqlStore`: the storage traits on sqlx's `Any` driver, so one set of runtime-checked queries
//! (`$n` placeholders, which both SQLite and PostgreSQL accept) serves both backends.
//! Each backend has its own migration directory, embedded in the binary.

mod account;
mod alerts;
mod audit;
mod clients;
mod dashboard;
mod device;
mod factors;
mod federation;
mod id_jag;
mod keys;
mod par;
mod passkeys;
mod refresh;
mod reports;
mod sessions;
mod signals;
mod signin;
mod throttle;
mod two_factor;
mod users;

use std::str::FromStr;

use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use crate::error::{Error, Result};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../migrations/authz/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator =
    sqlx::migrate!("../migrations/authz/postgres");

pub use shared::db::Backend;

/// The SQL implementation of every storage trait.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
}

impl SqlStore {
    /// Connect (creating the SQLite file and its directory if needed). Does not migrate.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        let (pool, backend) =
            shared::db::connect(url, max_connections)
                .await
                .map_err(|e| match e {
                    shared::db::DbError::Sqlx(e) => Error::Database(e),
                    other => Error::Invalid(other.to_string()),
                })?;
        Ok(Self { pool, backend })
    }

    /// Apply pending migrations of this backend.
    pub async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.pool).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.pool).await?,
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Every transaction of this store writes: begin it so that it holds the write lock from
    /// the start on SQLite (`shared::db::begin_write`).
    async fn write_tx(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
        Ok(shared::db::begin_write(&self.pool, self.backend).await?)
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

#[async_trait::async_trait]
impl crate::store::Store for SqlStore {
    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    fn pool_usage(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }
}

/// Split a stored space-separated list.
fn words(s: &str) -> Vec<String> {
    s.split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A stored URI list: a JSON array of strings.
fn uri_list(row: &AnyRow, col: &str) -> Result<Vec<String>> {
    let raw: String = row.try_get(col)?;
    serde_json::from_str(&raw).map_err(|e| Error::internal(format!("corrupt column {col}: {e}")))
}

/// A URI list for storage (never a delimiter-joined string: a URI cannot smuggle in another).
fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

fn parse_col<T: FromStr>(row: &AnyRow, col: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    let raw: String = row.try_get(col)?;
    raw.parse()
        .map_err(|e| Error::internal(format!("corrupt column {col}: {e}")))
}

/// Map a unique-constraint violation to `Conflict(what)`.
fn conflict(e: sqlx::Error, what: impl Into<String>) -> Error {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => Error::Conflict(what.into()),
        _ => Error::Database(e),
    }
}
