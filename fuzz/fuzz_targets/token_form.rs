//! The token-endpoint form parser (RFC 6749 §3.2): any bytes → a parsed form or an
//! `invalid_request`, never a panic; parsed forms never contain repeated non-repeatable
//! parameters or oversized values.
#![no_main]

use authz::oauth::form::{Form, MAX_BODY_BYTES, MAX_VALUE_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Form::parse(data) {
        Ok(form) => {
            assert!(data.len() <= MAX_BODY_BYTES);
            for name in ["grant_type", "client_id", "scope", "code", "refresh_token", "username"] {
                if let Some(v) = form.get(name) {
                    assert!(v.len() <= MAX_VALUE_BYTES);
                    assert_eq!(form.all(name).len(), 1, "{name} repeated");
                }
            }
            // `require` agrees with `get`.
            assert_eq!(form.require("grant_type").ok(), form.get("grant_type"));
        }
        Err(e) => assert_eq!(e.code(), shared::ErrorCode::InvalidRequest),
    }
});
