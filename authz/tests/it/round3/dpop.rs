//! Issue 24 findings: see `round3/mod.rs`.
