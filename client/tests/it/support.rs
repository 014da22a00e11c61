//! Both servers for one test come from `testkit::system::System`.

pub use testkit::Backend;
pub use testkit::system::System;
