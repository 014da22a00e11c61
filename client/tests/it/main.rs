//! Integration tests: both servers on ephemeral ports (in-process, demo data seeded), the
//! client library and the real `mcp-auth-client` binary against them, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod binary;
mod device;
mod dpop;
mod library;
