//! `[rate_limits]`: requests per client IP per minute (`AUTHZ_RATE_LIMITS_*`).

use super::table::section;

section! {
    /// Requests per client IP per minute; 0 turns a limit off. Over the limit: 429 with
    /// `Retry-After`.
    #[derive(Copy)]
    #[serde(default, deny_unknown_fields)]
    pub struct RateLimitConfig at "rate_limits" {
        /// `POST /token`, per client IP.
        token: u32 = 600, was ["AUTHZ_RATE_TOKEN"];
        /// `POST /token`, per authenticated client (counted after client authentication, so
        /// nobody can spend another client's budget; public clients, which authenticate
        /// nothing, are limited per address only).
        token_per_client: u32 = 1200, was ["AUTHZ_RATE_TOKEN_PER_CLIENT"];
        /// The login and consent forms and `POST /authorize`.
        login: u32 = 60, was ["AUTHZ_RATE_LOGIN"];
        /// `POST /revoke`.
        revoke: u32 = 300, was ["AUTHZ_RATE_REVOKE"];
        /// `POST /introspect`.
        introspect: u32 = 6000, was ["AUTHZ_RATE_INTROSPECT"];
        /// `GET /ssf/stream` and `POST /ssf/poll` (one budget), counted before authentication.
        ssf: u32 = 300, was ["AUTHZ_RATE_SSF"];
        /// `POST /resource-events`, counted before authentication.
        resource_events: u32 = 300, was ["AUTHZ_RATE_RESOURCE_EVENTS"];
    }
}
