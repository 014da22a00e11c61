//! Revocation (RFC 7009): ending the grant behind a presented token, and logout.
//!
//! Revocation reaches the presenting client's own grant and nothing else (RFC 7009 §2.1:
//! "SHOULD also invalidate … tokens based on the same authorization grant"): a refresh token's
//! family, and that client's grant in the session — its other refresh tokens, and its access
//! tokens wherever this server checks them (`protocol::live`). A cookie-less grant session (the
//! password grant) belongs to one client and ends entirely; a browser session outlives it, so
//! the user stays signed in and other clients' grants keep working. Tokens of other clients
//! and unknown tokens are answered like success and left alone (RFC 7009 §2.2: the client
//! cannot tell, so it cannot probe). Logout (`end_grant`) is what ends a whole session.

use crate::error::Result;
use crate::events::audit::RequestContext;
use crate::events::kinds;
use crate::protocol::introspection::{Found, find};
use crate::state::AppState;
use crate::store::{AuditEvent, Client, Outcome};

/// Log a grant out: its whole session (if any) and every refresh token of it.
pub async fn end_grant(
    state: &AppState,
    sid: Option<&str>,
    family: Option<&str>,
    reason: &str,
    actor: &str,
    ctx: &RequestContext,
) -> Result<bool> {
    let now = ctx.now;
    let mut revoked = 0;
    let mut ended = false;
    if let Some(f) = family {
        revoked += state.store.revoke_refresh_family(f, now).await?;
    }
    if let Some(sid) = sid {
        let end = state.store.end_session(sid, now).await?;
        ended = end.ended;
        revoked += end.refresh_tokens_revoked;
        if ended {
            let signal = crate::events::ssf::Signal::SessionRevoked { user: None, sid };
            crate::events::ssf::emit(state, signal).await;
        }
    }
    if ended || revoked > 0 {
        let ev = AuditEvent::new(now, kinds::GRANT_REVOKED, Outcome::Success)
            .actor(actor)
            .details(serde_json::json!({
                "sid": sid, "family_id": family, "reason": reason,
                "session_ended": ended, "refresh_tokens_revoked": revoked,
            }))
            .ctx(ctx);
        state.audit(ev).await;
    }
    Ok(ended || revoked > 0)
}

/// `POST /revoke` for an authenticated `client`.
pub async fn revoke(
    state: &AppState,
    client: &Client,
    token: &str,
    hint: Option<&str>,
    ctx: &RequestContext,
) -> Result<()> {
    let (subject, sid, family, token_type) = match find(state, token, hint).await? {
        Found::Refresh(r) if r.client_id == client.id => {
            (r.user_id, r.sid, Some(r.family_id), "refresh_token")
        }
        Found::Access(c) if c.client_id == client.id => (c.sub, c.sid, None, "access_token"),
        _ => return Ok(()),
    };
    let ev = AuditEvent::new(ctx.now, kinds::TOKEN_REVOKED, Outcome::Success)
        .subject(&subject)
        .client(&client.id)
        .details(serde_json::json!({ "token_type": token_type, "sid": sid }))
        .ctx(ctx);
    state.audit(ev).await;
    end_client_grant(
        state,
        &client.id,
        sid.as_deref(),
        family.as_deref(),
        "revoked",
        ctx,
    )
    .await?;
    Ok(())
}

/// End `client_id`'s grant (see the module docs): on revocation, and when an authorization
/// code is replayed (RFC 6749 §4.1.2: revoke the tokens issued from it). Returns how many
/// refresh tokens went with it.
pub async fn end_client_grant(
    state: &AppState,
    client_id: &str,
    sid: Option<&str>,
    family: Option<&str>,
    reason: &str,
    ctx: &RequestContext,
) -> Result<u64> {
    let now = ctx.now;
    let mut revoked = 0;
    let mut session_ended = false;
    let mut grant_revoked = false;
    if let Some(f) = family {
        revoked += state.store.revoke_refresh_family(f, now).await?;
    }
    if let Some(sid) = sid {
        match state.store.get_session_by_sid(sid).await? {
            Some(s) if s.client_id.as_deref() == Some(client_id) => {
                let end = state.store.end_session(sid, now).await?;
                session_ended = end.ended;
                revoked += end.refresh_tokens_revoked;
                let signal = crate::events::ssf::Signal::SessionRevoked {
                    user: Some(&s.user_id),
                    sid,
                };
                crate::events::ssf::emit(state, signal).await;
            }
            Some(s) => {
                // Access tokens of this grant could live this long; refuse them until then.
                let keep_until = now + state.config.max_signed_token_ttl() + 60;
                revoked += state
                    .store
                    .revoke_grant(sid, client_id, now, keep_until)
                    .await?;
                grant_revoked = true;
                let signal = crate::events::ssf::Signal::GrantRevoked {
                    user: Some(&s.user_id),
                    sid,
                    client_id,
                };
                crate::events::ssf::emit(state, signal).await;
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
    state.audit(ev).await;
    Ok(revoked)
}
