//! `[browser]`: browser sessions, authorization codes, login throttling and dynamic client
//! registration (`AUTHZ_BROWSER_*`).

use shared::config::ConfigError;

use super::table::{Section, invalid, section};

section! {
    /// The browser-facing flow.
    #[derive(Copy)]
    #[serde(default, deny_unknown_fields)]
    pub struct BrowserConfig at "browser" {
        /// A session unused this long ends.
        session_idle_secs: i64 = 3600, was ["AUTHZ_SESSION_IDLE_SECS"];
        /// A session never outlives this.
        session_absolute_secs: i64 = 12 * 3600, was ["AUTHZ_SESSION_ABSOLUTE_SECS"];
        /// Authorization code lifetime (RFC 6749 §4.1.2: at most 10 min).
        code_ttl_secs: i64 = 60, range 10..=600, was ["AUTHZ_CODE_TTL_SECS"];
        /// Failed logins of one username within the window before it is locked.
        login_max_failures: i64 = 5, was ["AUTHZ_LOGIN_MAX_FAILURES"];
        /// The window in which failed logins are counted.
        login_failure_window_secs: i64 = 900, was ["AUTHZ_LOGIN_FAILURE_WINDOW_SECS"];
        /// The first lock; each further lock doubles it (at most a day).
        login_lockout_secs: i64 = 60, was ["AUTHZ_LOGIN_LOCKOUT_SECS"];
        /// RFC 7591 open dynamic client registration (MCP clients need it); `false` turns
        /// `/register` off.
        registration_open: bool = true, was ["AUTHZ_REGISTRATION_OPEN"];
        /// Registrations allowed per client IP per minute.
        registration_per_minute: u32 = 10, was ["AUTHZ_REGISTRATION_PER_MINUTE"];
        /// The most self-registered clients kept at once (counted atomically with them);
        /// registration beyond it is refused with `invalid_client_metadata`.
        registration_max_clients: i64 = 10_000, was ["AUTHZ_REGISTRATION_MAX_CLIENTS"];
        /// A self-registered client that never got a token this long after registering is
        /// deleted by housekeeping (`authz client prune [--dry-run]` does it now).
        registration_unused_ttl_secs: i64 = 86_400, was ["AUTHZ_REGISTRATION_UNUSED_TTL_SECS"];
        /// One unused this many days, with no live grant left, is deleted too.
        registration_idle_ttl_days: i64 = 90, was ["AUTHZ_REGISTRATION_IDLE_TTL_DAYS"];
    }
}

impl BrowserConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.check_ranges()?;
        if self.session_idle_secs < 60 || self.session_absolute_secs < self.session_idle_secs {
            return Err(invalid(
                Self::PATH,
                "session_idle_secs",
                "must be ≥ 60 and ≤ session_absolute_secs",
            ));
        }
        for (key, value) in [
            ("login_max_failures", self.login_max_failures),
            ("login_failure_window_secs", self.login_failure_window_secs),
            ("login_lockout_secs", self.login_lockout_secs),
        ] {
            if value < 1 {
                return Err(invalid(Self::PATH, key, "must be ≥ 1"));
            }
        }
        Ok(())
    }
}
