//! THE catalogue of audit kinds: every kind this server writes is a constant here, and only
//! here, as `noun.verb` (the string is the wire and storage format: exports, alerts, the
//! console's filters and Shared Signals mapping read it). Code names the constant; tests keep
//! writing the literal strings, so a renamed kind shows up as a failing test, not as silence.
//!
//! The alerts' default selection (`config::default_alert_kinds`), the console's charts
//! (`authz_web::console::dashboard`) and the audit page's filter name kinds from here.

/// Declare each kind once: a constant per kind, and `ALL`, sorted.
macro_rules! kinds {
    ($($name:ident = $kind:literal,)*) => {
        $(pub const $name: &str = $kind;)*
        /// Every kind, sorted (the audit page's filter lists them).
        pub const ALL: &[&str] = &[$($kind),*];
    };
}

kinds! {
    API_KEY_CREATED = "api_key.created",
    API_KEY_REVOKED = "api_key.revoked",
    APP_REVOKED = "app.revoked",
    AUDIT_EXPORTED = "audit.exported",
    CLIENT_AUTH_FAILED = "client.auth_failed",
    CLIENT_CREATED = "client.created",
    CLIENT_DELETED = "client.deleted",
    CLIENT_METADATA_REJECTED = "client.metadata_rejected",
    CLIENT_PRUNED = "client.pruned",
    CLIENT_REGISTERED = "client.registered",
    CLIENT_REGISTRATION_FAILED = "client.registration_failed",
    CLIENT_SECRET_ROTATED = "client.secret_rotated",
    CLIENT_SECRET_ROTATION_REFUSED = "client.secret_rotation_refused",
    CODE_ISSUED = "code.issued",
    CODE_REPLAYED = "code.replayed",
    CONSENT_DENIED = "consent.denied",
    CONSENT_GRANTED = "consent.granted",
    DEVICE_APPROVED = "device.approved",
    DEVICE_AUTHORIZATION_STARTED = "device.authorization_started",
    DEVICE_DENIED = "device.denied",
    DEVICE_TOKEN_ISSUED = "device.token_issued",
    DEVICE_USER_CODE_FAILED = "device.user_code_failed",
    GRANT_REVOKED = "grant.revoked",
    ID_JAG_ACCEPTED = "id_jag.accepted",
    ID_JAG_LINKED = "id_jag.linked",
    ID_JAG_REFUSED = "id_jag.refused",
    ID_JAG_UNLINKED = "id_jag.unlinked",
    KEY_CREATED = "key.created",
    KEY_ROTATED = "key.rotated",
    KEY_WITHDRAWN = "key.withdrawn",
    LOGIN_FAILED = "login.failed",
    LOGIN_LOCKED = "login.locked",
    LOGIN_SUCCEEDED = "login.succeeded",
    MCP_TOOL_DENIED = "mcp.tool_denied",
    MFA_CODE_FAILED = "mfa.code_failed",
    MFA_CODE_REPLAYED = "mfa.code_replayed",
    MFA_CONFIRM_FAILED = "mfa.confirm_failed",
    MFA_DISABLED = "mfa.disabled",
    MFA_ENABLED = "mfa.enabled",
    MFA_ENROLMENT_STARTED = "mfa.enrolment_started",
    MFA_RECOVERY_CODE_USED = "mfa.recovery_code_used",
    MFA_RESET_BY_ADMIN = "mfa.reset_by_admin",
    PAR_PUSHED = "par.pushed",
    PASSKEY_ADDED = "passkey.added",
    PASSKEY_FAILED = "passkey.failed",
    PASSKEY_REMOVED = "passkey.removed",
    REFRESH_RETRIED = "refresh.retried",
    REFRESH_REUSE_DETECTED = "refresh.reuse_detected",
    SESSION_ENDED = "session.ended",
    SESSION_STARTED = "session.started",
    SSF_EVENT_DROPPED = "ssf.event_dropped",
    TOKEN_ISSUED = "token.issued",
    TOKEN_REVOKED = "token.revoked",
    UPSTREAM_LINKED = "upstream.linked",
    UPSTREAM_REFUSED = "upstream.refused",
    UPSTREAM_SIGNED_IN = "upstream.signed_in",
    UPSTREAM_TOKEN_RELEASED = "upstream.token_released",
    UPSTREAM_UNLINKED = "upstream.unlinked",
    USER_CREATED = "user.created",
    USER_DELETED = "user.deleted",
    USER_DISABLED = "user.disabled",
    USER_EMAIL_CHANGED = "user.email_changed",
    USER_ENABLED = "user.enabled",
    USER_PASSWORD_CHANGED = "user.password_changed",
    USER_ROLES_CHANGED = "user.roles_changed",
    USER_SESSIONS_ENDED = "user.sessions_ended",
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `noun.verb`, both lowercase ASCII words (underscores allowed).
    fn well_formed(kind: &str) -> bool {
        let plain =
            |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        kind.split_once('.')
            .is_some_and(|(n, v)| plain(n) && plain(v))
    }

    #[test]
    fn kinds_are_sorted_unique_and_noun_dot_verb() {
        assert!(ALL.windows(2).all(|w| w[0] < w[1]), "sorted and unique");
        for k in ALL {
            assert!(well_formed(k), "{k}");
        }
        // Positive controls of the shape rule.
        for bad in [
            "Login.failed",
            "login",
            "login.",
            "login.failed.twice",
            "login.fail ed",
        ] {
            assert!(!well_formed(bad), "{bad}");
        }
    }
}
