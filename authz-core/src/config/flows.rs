//! Configuration of the device authorization grant (`[device]`, `AUTHZ_DEVICE_*`, RFC 8628)
//! and of pushed authorization requests (`[par]`, `AUTHZ_PAR_*`, RFC 9126).

use super::table::section;

section! {
    /// The device authorization grant (RFC 8628).
    #[serde(default, deny_unknown_fields)]
    pub struct DeviceConfig at "device" {
        /// Serve `/device_authorization`, the `/device` page and the grant at `/token` (clients
        /// still need `urn:ietf:params:oauth:grant-type:device_code` in their `grant_types`).
        enabled: bool = true, was ["AUTHZ_DEVICE_FLOW"];
        /// How long a device code and its user code live (RFC 8628 §3.2 `expires_in`).
        code_ttl_secs: i64 = 600, range 60..=3600;
        /// The minimum polling interval (§3.2 `interval`); each `slow_down` adds 5 s for that
        /// device code.
        interval_secs: i64 = 5, range 1..=60;
        /// Device authorization requests per minute per client IP (0: no limit).
        rate_per_minute: u32 = 30, was ["AUTHZ_DEVICE_RATE"];
        /// User codes a signed-in session may enter per minute on `/device` (RFC 8628 §5.1
        /// brute-force protection).
        user_code_attempts_per_minute: u32 = 5, range 1..=60,
            was ["AUTHZ_DEVICE_USER_CODE_ATTEMPTS"];
    }
}

section! {
    /// Pushed authorization requests (RFC 9126); `/par` is always served.
    #[serde(default, deny_unknown_fields)]
    pub struct ParConfig at "par" {
        /// Every authorization request must be pushed first (RFC 9126 §5
        /// `require_pushed_authorization_requests`; off: clients may still be required one by
        /// one).
        required: bool = false, was ["AUTHZ_REQUIRE_PAR"];
        /// How long a `request_uri` lives (§2.2 `expires_in`; the RFC's guidance: between 5 and
        /// 600 seconds).
        request_uri_ttl_secs: i64 = 60, range 5..=600, was ["AUTHZ_PAR_TTL_SECS"];
        /// How long the sign-in and consent steps after a spent `request_uri` may take.
        flow_secs: i64 = 900, range 60..=3600;
    }
}
