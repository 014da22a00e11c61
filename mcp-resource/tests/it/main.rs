//! Integration tests: `authz` and `mcp-resource` on ephemeral ports, real tokens, rmcp's own
//! client over Streamable HTTP, each on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod access;
mod admin;
mod attacks;
mod browser_client;
mod cimd;
mod cluster;
mod denials;
mod dpop;
mod federated;
mod logs;
mod metrics;
mod notes;
mod oauth;
mod round3;
mod signals;
mod tls;
mod tokens;
