//! Shared Signals transmitter (OpenID Shared Signals Framework 1.0): security events about
//! sessions and accounts as Security Event Tokens (RFC 8417), queued per receiver and delivered
//! by polling (RFC 8936), so resource servers that verify tokens offline learn of a logout or
//! revocation within a poll interval instead of at the token's expiry.
//!
//! - **Events.** CAEP `session-revoked` (a logout; an RFC 7009 revocation, of a grant session
//!   or of one client's grant in a browser session), RISC `account-disabled`, CAEP
//!   `credential-change` (a password reset; an API key revoked; a second factor removed by a
//!   two-factor reset or a passkey's removal). The subject is a complex
//!   subject (SSF §3, RFC 9493): `user` (`iss_sub`), and `session` / `application` (`opaque`)
//!   when the event is about one session or one client's grant.
//! - **Signing.** By the token issuer, with the access-token key (`typ: secevent+jwt`,
//!   RFC 8417 §2.3), so receivers verify SETs with the JWKS they already hold.
//! - **Receivers** are the clients named in `AUTHZ_SSF_RECEIVERS`; each has one stream, whose
//!   audience (`aud`) is its client id. Every event is queued for every receiver in storage
//!   (so replicas agree and nothing is lost by a restart) until the receiver acknowledges it.
//! - A failure to queue an event never undoes what caused it (the logout stands); it is logged
//!   as an error, and the receiver then refuses the tokens only at their expiry, as before.
//! - **Refused events come again.** An event the receiver answers with `setErrs` (RFC 8936
//!   §2.4) is not taken as delivered: a receiver's failure may pass (a key it has not fetched
//!   yet, its storage down). It is delivered again after a pause growing by
//!   [`REFUSAL_PAUSE_STEP`] per refusal, until refused `AUTHZ_SSF_MAX_SET_ERRORS` times (5);
//!   then it is dropped and audited (`ssf.event_dropped`: receiver, `jti`, error code — never
//!   the SET). Events left unacknowledged come again at every poll.
//! - **Signed by a published key when delivered.** An event still queued when the key that
//!   signed it leaves the JWKS (withdrawn, `authz keys revoke`; or retired past its window
//!   while the receiver was away) is signed again, same claims, by the current key before it
//!   is delivered, so the receiver can verify it. The queued SET is this server's own record,
//!   trusted like the key table it sits beside.

use crate::events::kinds;
use base64::Engine;
use serde_json::{Value, json};

use crate::config::Config;
use crate::error::Result;
use crate::events::Events;
use crate::store::{AuditEvent, Outcome, QueuedSet, SetRefusal};

/// The pause before a refused event is delivered again grows by this much per refusal (15 s,
/// 30 s, 45 s, …: with the default bound, 2.5 minutes from the first refusal to the last —
/// more than a resource server's JWKS cache lifetime).
pub(crate) const REFUSAL_PAUSE_STEP: i64 = 15;

pub const SESSION_REVOKED: &str =
    "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
pub const CREDENTIAL_CHANGE: &str =
    "https://schemas.openid.net/secevent/caep/event-type/credential-change";
pub const ACCOUNT_DISABLED: &str =
    "https://schemas.openid.net/secevent/risc/event-type/account-disabled";
/// Poll-based delivery (RFC 8936), the one delivery method offered.
pub(crate) const POLL_DELIVERY: &str = "urn:ietf:rfc:8936";
/// Every event type this transmitter emits.
pub(crate) const EVENTS: [&str; 3] = [SESSION_REVOKED, CREDENTIAL_CHANGE, ACCOUNT_DISABLED];

/// What signs security events: the token issuer, with the access-token key (RFC 8417 §2.3),
/// so receivers verify SETs with the JWKS they already hold.
pub trait SetSigner: Send + Sync {
    /// `claims` signed as a SET (`typ: secevent+jwt`) by the key that signs at `now`.
    fn security_event(&self, claims: &Value, now: i64) -> Result<String>;
    /// Is the key `kid` published in the JWKS now?
    fn publishes(&self, kid: &str) -> bool;
}

/// Something resource servers must hear of.
#[derive(Debug, Clone, Copy)]
pub enum Signal<'a> {
    /// One session ended: every token of it is dead (logout, a grant session revoked).
    SessionRevoked { user: Option<&'a str>, sid: &'a str },
    /// One client's grant within a session revoked (RFC 7009): that client's tokens of it.
    GrantRevoked {
        user: Option<&'a str>,
        sid: &'a str,
        client_id: &'a str,
    },
    /// The account was disabled: its tokens issued until now.
    AccountDisabled { user: &'a str },
    /// A credential changed: the user's tokens issued until now (a password reset), or those
    /// of one client (an API key revoked).
    CredentialChange {
        user: &'a str,
        credential: &'a str,
        client_id: Option<&'a str>,
    },
}

impl Signal<'_> {
    fn event_type(&self) -> &'static str {
        match self {
            Self::SessionRevoked { .. } | Self::GrantRevoked { .. } => SESSION_REVOKED,
            Self::AccountDisabled { .. } => ACCOUNT_DISABLED,
            Self::CredentialChange { .. } => CREDENTIAL_CHANGE,
        }
    }

    /// The complex subject (SSF 1.0 §3.2, RFC 9493 §3).
    fn subject(&self, issuer: &str) -> Value {
        let user = |sub: &str| json!({ "format": "iss_sub", "iss": issuer, "sub": sub });
        let opaque = |id: &str| json!({ "format": "opaque", "id": id });
        let mut s = serde_json::Map::new();
        s.insert("format".into(), "complex".into());
        let (u, sid, app) = match *self {
            Self::SessionRevoked { user, sid } => (user, Some(sid), None),
            Self::GrantRevoked {
                user,
                sid,
                client_id,
            } => (user, Some(sid), Some(client_id)),
            Self::AccountDisabled { user } => (Some(user), None, None),
            Self::CredentialChange {
                user, client_id, ..
            } => (Some(user), None, client_id),
        };
        if let Some(u) = u {
            s.insert("user".into(), user(u));
        }
        if let Some(sid) = sid {
            s.insert("session".into(), opaque(sid));
        }
        if let Some(app) = app {
            s.insert("application".into(), opaque(app));
        }
        Value::Object(s)
    }

    fn event(&self, now: i64) -> Value {
        let mut e = json!({ "event_timestamp": now });
        match *self {
            Self::SessionRevoked { .. } | Self::GrantRevoked { .. } => {
                e["initiating_entity"] = "user".into();
            }
            Self::AccountDisabled { .. } => {
                e["reason"] = "administrator disabled the account".into();
            }
            Self::CredentialChange { credential, .. } => {
                e["credential_type"] = credential.into();
                e["change_type"] = match credential {
                    "api-key" => "revoke",
                    "password" => "update",
                    // A second factor removed (a two-factor reset, a passkey removed).
                    _ => "delete",
                }
                .into();
            }
        }
        e
    }
}

/// Queue `signal` for every receiver, as one signed SET each (`Events::signal`).
pub(crate) async fn emit(events: &Events, signal: Signal<'_>) {
    let receivers = &events.config.ssf.receivers;
    if receivers.is_empty() {
        return;
    }
    let now = events.now();
    let issuer = &events.config.issuer;
    let mut sets = Vec::with_capacity(receivers.len());
    for receiver in receivers {
        let jti = shared::crypto::random_id("");
        let claims = json!({
            "iss": issuer,
            "jti": jti,
            "iat": now,
            "aud": receiver,
            "sub_id": signal.subject(issuer),
            "events": { signal.event_type(): signal.event(now) },
        });
        match events.signer.security_event(&claims, now) {
            Ok(jwt) => sets.push(QueuedSet {
                receiver: receiver.clone(),
                jti,
                jwt,
                created_at: now,
            }),
            Err(e) => tracing::error!(error = %e, "signing a security event failed"),
        }
    }
    match events.store.queue_sets(&sets).await {
        Ok(()) => events
            .metrics
            .security_events(signal.event_type(), sets.len() as u64),
        Err(e) => tracing::error!(
            error = %e,
            event = signal.event_type(),
            "queueing a security event failed: receivers learn of it only when its tokens expire"
        ),
    }
}

/// The receiver could not process these SETs (RFC 8936 §2.4 `setErrs`): each is delivered
/// again after a pause, or dropped and audited once refused too often (see the module docs).
pub async fn refused(events: &Events, receiver: &str, refusals: &[SetRefusal]) -> Result<()> {
    let now = events.now();
    let max = i64::from(events.config.ssf.max_set_errors.max(1));
    let dropped = events
        .store
        .refuse_sets(receiver, refusals, now, REFUSAL_PAUSE_STEP, max)
        .await?;
    for d in dropped {
        tracing::error!(%receiver, jti = %d.jti, err = %d.err, refusals = d.refusals,
            "gave up delivering a security event the receiver keeps refusing");
        events
            .audit(
                AuditEvent::new(now, kinds::SSF_EVENT_DROPPED, Outcome::Failure)
                    .actor("system")
                    .client(receiver)
                    .details(json!({
                        "receiver": receiver, "jti": d.jti, "err": d.err, "refusals": d.refusals,
                    })),
            )
            .await;
    }
    Ok(())
}

/// The queued SETs of `receiver` as they are delivered: one whose key is no longer published
/// is signed again by the current key (and stored so); see the module docs.
pub async fn deliverable(
    events: &Events,
    receiver: &str,
    pending: Vec<(String, String)>,
) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(pending.len());
    for (jti, jwt) in pending {
        let kid = jsonwebtoken::decode_header(&jwt).ok().and_then(|h| h.kid);
        if kid.is_some_and(|k| events.signer.publishes(&k)) {
            out.push((jti, jwt));
            continue;
        }
        let signed =
            claims_of(&jwt).and_then(|c| events.signer.security_event(&c, events.now()).ok());
        match signed {
            Some(again) => {
                if let Err(e) = events.store.replace_set(receiver, &jti, &again).await {
                    tracing::warn!(error = %e, %jti, "storing a security event signed again failed");
                }
                out.push((jti, again));
            }
            None => {
                tracing::error!(%jti, "a queued security event could not be signed again");
                out.push((jti, jwt));
            }
        }
    }
    out
}

/// The claims of a SET this server signed (its payload).
fn claims_of(jwt: &str) -> Option<Value> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The transmitter's metadata (SSF 1.0 §7.1), at `/.well-known/ssf-configuration`.
pub fn configuration(config: &Config) -> Value {
    let issuer = &config.issuer;
    json!({
        "spec_version": "1_0",
        "issuer": issuer,
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "delivery_methods_supported": [POLL_DELIVERY],
        "configuration_endpoint": format!("{issuer}/ssf/stream"),
        "authorization_schemes": [{ "spec_urn": "urn:ietf:rfc:6749" }],
        "default_subjects": "ALL",
    })
}

/// A receiver's stream (SSF 1.0 §8.1.1): what it gets and where it polls.
pub fn stream(config: &Config, receiver: &str) -> Value {
    let issuer = &config.issuer;
    json!({
        "stream_id": receiver,
        "iss": issuer,
        "aud": [receiver],
        "events_supported": EVENTS,
        "events_requested": EVENTS,
        "events_delivered": EVENTS,
        "delivery": {
            "method": POLL_DELIVERY,
            "endpoint_url": format!("{issuer}/ssf/poll"),
        },
        "description": "session and account events for offline token verifiers",
    })
}
