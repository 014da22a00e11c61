//! The web console (issue 17): server-rendered pages for administrators and users.

pub mod chart;
pub mod dashboard;
pub mod qr;
pub mod time;
