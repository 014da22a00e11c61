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
pub use crate::identity::grants::ClientGrant;
pub(crate) use crate::identity::grants::end_client_grant;
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
            state.events.signal(signal).await;
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
        &*state.store,
        &state.events,
        &state.config,
        ClientGrant {
            client_id: &client.id,
            sid: sid.as_deref(),
            family: family.as_deref(),
        },
        "revoked",
        ctx,
    )
    .await?;
    Ok(())
}
