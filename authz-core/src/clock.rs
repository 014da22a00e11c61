//! Injected time (`shared::clock`): the same clock types as every server of the workspace.

pub use shared::clock::*;
