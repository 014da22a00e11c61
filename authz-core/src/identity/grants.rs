//! Ending one client's grant: its refresh-token family and its part of the session (RFC 7009
//! §2.1: "SHOULD also invalidate … tokens based on the same authorization grant"). A
//! cookie-less grant session (the password grant) belongs to one client and ends entirely; a
//! browser session outlives it, so the user stays signed in and other clients' grants keep
//! working, while the client's access tokens are refused wherever this server checks them
//! (`protocol::live`). Used by revocation, by a replayed authorization code and by a user
//! revoking a connected app (`identity::data`).

use crate::config::Config;
use crate::error::Result;
use crate::events::Events;
use crate::events::audit::RequestContext;
use crate::events::kinds;
use crate::store::{AuditEvent, Outcome, Store};

/// One client's grant: the client, the session it was made in (if any) and its refresh-token
/// family (if any).
#[derive(Debug, Clone, Copy)]
pub struct ClientGrant<'a> {
    pub client_id: &'a str,
    pub sid: Option<&'a str>,
    pub family: Option<&'a str>,
}

/// End a client's grant (see the module docs): on revocation (`protocol::revocation`), and
/// when an authorization code is replayed (RFC 6749 §4.1.2: revoke the tokens issued from it).
/// `config`: how long its access tokens could live. Returns how many refresh tokens went with
/// it.
pub(crate) async fn end_client_grant(
    store: &dyn Store,
    events: &Events,
    config: &Config,
    grant: ClientGrant<'_>,
    reason: &str,
    ctx: &RequestContext,
) -> Result<u64> {
    let ClientGrant {
        client_id,
        sid,
        family,
    } = grant;
    let now = ctx.now;
    let mut revoked = 0;
    let mut session_ended = false;
    let mut grant_revoked = false;
    if let Some(f) = family {
        revoked += store.revoke_refresh_family(f, now).await?;
    }
    if let Some(sid) = sid {
        match store.get_session_by_sid(sid).await? {
            Some(s) if s.client_id.as_deref() == Some(client_id) => {
                let end = store.end_session(sid, now).await?;
                session_ended = end.ended;
                revoked += end.refresh_tokens_revoked;
                let signal = crate::events::ssf::Signal::SessionRevoked {
                    user: Some(&s.user_id),
                    sid,
                };
                events.signal(signal).await;
            }
            Some(s) => {
                // Access tokens of this grant could live this long; refuse them until then.
                let keep_until = now + config.max_signed_token_ttl() + 60;
                revoked += store.revoke_grant(sid, client_id, now, keep_until).await?;
                grant_revoked = true;
                let signal = crate::events::ssf::Signal::GrantRevoked {
                    user: Some(&s.user_id),
                    sid,
                    client_id,
                };
                events.signal(signal).await;
            }
            None => {}
        }
    }
    let ev = AuditEvent::new(now, kinds::GRANT_REVOKED, Outcome::Success)
        .actor(format!("client:{client_id}"))
        .client(client_id)
        .details(serde_json::json!({
            "sid": sid, "family_id": family, "reason": reason,
            "session_ended": session_ended, "client_grant_revoked": grant_revoked,
            "refresh_tokens_revoked": revoked,
        }))
        .ctx(ctx);
    events.audit(ev).await;
    Ok(revoked)
}
