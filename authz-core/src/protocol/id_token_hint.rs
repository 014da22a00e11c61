//! `id_token_hint` (OIDC Core §3.1.2.1, RP-Initiated Logout 1.0 §2): an ID token this server
//! issued, handed back by the client as a hint about who the user is. Its signature (by one of
//! our published keys) and issuer are checked; its expiry is not, since both specifications
//! accept an expired hint.

use serde::Deserialize;

use crate::state::AppState;

/// The claims of a verified hint that the server acts on.
#[derive(Debug, Clone, Deserialize)]
pub struct IdTokenHint {
    /// The user the hint names.
    pub sub: String,
    /// The client it was issued to.
    pub aud: String,
    /// The session it was issued in.
    pub sid: Option<String>,
}

/// The hint's claims if we issued it, `None` otherwise.
pub fn verify(state: &AppState, raw: &str) -> Option<IdTokenHint> {
    state
        .keys
        .current()
        .verify_own(raw, "JWT", &state.config.issuer, None)
}
