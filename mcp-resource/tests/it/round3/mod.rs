//! Security round 3 (issue 24) at the MCP server: regression tests named after the findings
//! (`item_NN_…`), each beside a positive control; on SQLite and PostgreSQL.

mod delivery;
mod dpop;
