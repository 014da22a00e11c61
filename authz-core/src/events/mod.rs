//! What happened, for operators and for other parties: the audit writer, alerts, Shared
//! Signals (RFC 8935/8936) and resource servers' reports.

pub mod alerts;
pub mod audit;
pub mod kinds;
pub mod resource_reports;
pub mod ssf;
