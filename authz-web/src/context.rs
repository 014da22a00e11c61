//! The request context's old home: the extractor and the client-address rule are in
//! [`crate::extract`], the requester-scope middleware in [`crate::layers`]; re-exported here
//! for the modules that still name this path.

pub(crate) use crate::extract::Ctx;
pub use crate::extract::client_ip;
