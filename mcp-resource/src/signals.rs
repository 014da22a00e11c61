//! How this server learns what to refuse although the tokens verify offline: a Shared Signals
//! receiver (OpenID SSF 1.0) polling the authorization server's stream for this server's
//! client (RFC 8936, every `MCP_SSF_POLL_SECS`, default 2 s).
//!
//! - **Rules** (`crate::revocations`): each event becomes a session, grant or subject rule;
//!   the logout tool adds the same session rule: one mechanism.
//! - **Trust.** Each SET is verified like a token: the issuer's published key, `typ:
//!   secevent+jwt`, `iss`, `aud` = this server's client id, and subjects of our issuer only.
//!   A SET that fails is never applied.
//! - **Permanent or not.** Only a SET that can never verify is reported back in `setErrs`
//!   (malformed, a bad signature by a known key, another issuer or audience, a `jti`
//!   mismatch): the transmitter gives up on it. One whose key is unknown (an emergency
//!   rotation this server has not fetched yet) or whose keys cannot be fetched right now is
//!   neither acknowledged nor refused, so it comes again at the next poll (RFC 8936 §2.4);
//!   verifying it asked the verifier for the JWKS again (at most once per
//!   `MCP_JWKS_MIN_REFETCH_SECS`), so it is applied once the key is there.
//! - **At least once, persisted.** A rule is stored before its SET is acknowledged, so a
//!   crash between the two means the SET comes again (applying it twice changes nothing); a
//!   restart loads the stored rules. Rules are kept until every token they cover has expired
//!   (`MCP_MAX_TOKEN_LIFETIME_SECS` after the event).

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use shared::verifier::VerifyError;

use crate::revocations::rules_of;
use crate::state::McpState;

/// Poll the stream until the task is aborted.
pub(crate) async fn poll_forever(state: Arc<McpState>) {
    let every = Duration::from_secs(state.config.ssf_poll_secs);
    let mut endpoint: Option<String> = None;
    let mut ack: Vec<String> = Vec::new();
    let mut errors = serde_json::Map::new();
    loop {
        let url = match &endpoint {
            Some(u) => u.clone(),
            None => match state.authz.ssf_poll_endpoint().await {
                Ok(u) => {
                    tracing::info!(endpoint = %u, "receiving Shared Signals events");
                    endpoint = Some(u.clone());
                    u
                }
                Err(e) => {
                    tracing::warn!(error = %e, "no Shared Signals stream yet; retrying");
                    tokio::time::sleep(every.max(Duration::from_secs(1))).await;
                    continue;
                }
            },
        };
        let more = match state.authz.ssf_poll(&url, &ack, &errors).await {
            Ok(answer) => {
                ack.clear();
                errors.clear();
                receive(&state, &answer, &mut ack, &mut errors).await;
                answer["moreAvailable"] == true
            }
            Err(e) => {
                // Keep the acknowledgements for the next poll: nothing is lost.
                tracing::warn!(error = %e, "polling for Shared Signals events failed");
                if matches!(e, crate::authz_client::AuthzError::Refused { .. }) {
                    endpoint = None;
                }
                false
            }
        };
        if !more {
            tokio::time::sleep(every).await;
        }
    }
}

/// Verify and apply the SETs of one poll answer, collecting what to acknowledge.
async fn receive(
    state: &McpState,
    answer: &Value,
    ack: &mut Vec<String>,
    errors: &mut serde_json::Map<String, Value>,
) {
    let Some(sets) = answer["sets"].as_object() else {
        return;
    };
    let audience = state.authz.client_id();
    for (jti, set) in sets {
        let verified = match set.as_str() {
            Some(jwt) => state.verifier.verify_set(jwt, audience).await,
            None => Err(VerifyError::Malformed),
        };
        match verified {
            Ok(claims) if claims["jti"] == jti.as_str() => {
                let now = state.now();
                let until = now + state.config.max_token_lifetime_secs + 60;
                let mut stored_all = true;
                for rule in rules_of(&claims, &state.config.issuer) {
                    if let Err(e) = state.revoke(rule, now, until).await {
                        tracing::error!(error = %e, "storing a revocation failed; the event comes again");
                        stored_all = false;
                    }
                }
                if stored_all {
                    ack.push(jti.clone());
                }
            }
            Ok(_) => {
                errors.insert(
                    jti.clone(),
                    serde_json::json!({"err": "invalid_request", "description": "jti mismatch"}),
                );
            }
            Err(e) => {
                state.metrics.verification_failed(e.reason());
                match permanent_error(&e) {
                    Some(err) => {
                        tracing::warn!(%jti, reason = e.reason(), "refused a security event");
                        errors.insert(
                            jti.clone(),
                            serde_json::json!({"err": err, "description": e.to_string()}),
                        );
                    }
                    None => tracing::info!(%jti, reason = e.reason(),
                        "cannot verify a security event yet; it comes again"),
                }
            }
        }
    }
}

/// The RFC 8935 §2.4 error code for a SET that can never be verified, or `None` when the
/// failure may pass (the key is not fetched yet, the keys cannot be fetched, the issuer's
/// clock is ahead): then the SET is left unacknowledged and comes again.
fn permanent_error(e: &VerifyError) -> Option<&'static str> {
    match e {
        VerifyError::UnknownKey | VerifyError::KeysUnavailable(_) | VerifyError::NotYetValid => {
            None
        }
        VerifyError::WrongIssuer => Some("invalid_issuer"),
        VerifyError::WrongAudience => Some("invalid_audience"),
        VerifyError::BadSignature => Some("invalid_key"),
        VerifyError::Malformed
        | VerifyError::TooLarge
        | VerifyError::WrongType
        | VerifyError::AlgorithmNotAllowed
        | VerifyError::Expired => Some("invalid_request"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_that_cannot_pass_are_reported() {
        assert_eq!(permanent_error(&VerifyError::UnknownKey), None);
        assert_eq!(
            permanent_error(&VerifyError::KeysUnavailable("down".into())),
            None
        );
        assert_eq!(permanent_error(&VerifyError::NotYetValid), None);
        assert_eq!(
            permanent_error(&VerifyError::BadSignature),
            Some("invalid_key")
        );
        assert_eq!(
            permanent_error(&VerifyError::WrongAudience),
            Some("invalid_audience")
        );
        assert_eq!(
            permanent_error(&VerifyError::WrongIssuer),
            Some("invalid_issuer")
        );
        assert_eq!(
            permanent_error(&VerifyError::Malformed),
            Some("invalid_request")
        );
    }
}
