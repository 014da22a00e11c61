//! Integration tests: the real `authz` server on an ephemeral port, driven over HTTP by real
//! clients (openidconnect, reqwest), on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod idp;
mod support;

mod account_console;
mod admin_smoke;
mod admin_smoke_changes;
mod alerts;
mod attacks;
mod chromium;
mod cimd;
mod cli;
mod client_assertion;
mod client_credentials;
mod code_flow;
mod concurrency;
mod conformance;
mod console;
mod cors;
mod dashboard;
mod device;
mod discovery;
mod dpop;
mod dpop_code;
mod federation;
mod haproxy;
mod id_jag;
mod keys;
mod layering;
mod lifecycle;
mod login_pages;
mod logout;
mod mcp_spec;
mod mfa_signin;
mod migration;
mod no_store;
mod outage;
mod pages;
mod par;
#[cfg(feature = "passkeys")]
mod passkeys;
#[cfg(not(feature = "passkeys"))]
mod passkeys_off;
mod password;
mod process;
mod refresh;
mod register;
mod resource_events;
mod round3;
mod token_errors;
mod two_factor;
