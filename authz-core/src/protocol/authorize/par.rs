//! Pushed authorization requests (RFC 9126): the client sends the authorization request's
//! parameters to `/par`, authenticated, and gets a short-lived, single-use `request_uri` to
//! send the browser to `/authorize` with.
//!
//! - §2.1: the same parameters as `/authorize` and the same validation
//!   (`authorize::validate_pushed`); `request_uri` itself may not be pushed; the client's
//!   credentials are not part of what is kept. [`push`] is the endpoint's whole work once the
//!   client is authenticated and its DPoP proof checked.
//! - §2.2: `request_uri` = `urn:ietf:params:oauth:request_uri:` + 256 random bits; stored as
//!   the SHA-256 of the whole value; `expires_in` = `par.request_uri_ttl_secs` (60 s).
//! - §4: `/authorize` spends it once (one `DELETE … RETURNING`, bound to the `client_id` sent
//!   with it) and validates the parameters again. A replayed, expired or another client's
//!   `request_uri` is refused with a page (the redirect URI cannot be trusted without it).
//! - The sign-in and consent forms carry the request from step to step and re-validate it on
//!   each. After the `request_uri` is spent they carry the pushed parameters themselves plus
//!   a `par_ticket`: an expiry and an HMAC (master-derived key) over the parameters, so the
//!   later steps know the parameters are the pushed ones, unchanged — which is what a client
//!   that must push (§5) relies on. `prompt` is outside the MAC: the sign-in steps rewrite it
//!   (`prompt=login` once satisfied), and it only decides what the user is shown.
//! - RFC 9449 §10.1: a DPoP proof sent to `/par` binds the code to its key, as `dpop_jkt`
//!   would; when both are sent they must name the same key.

use crate::events::kinds;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use shared::ErrorCode;
use shared::dpop::Jkt;

use crate::crypto::{ct_eq, random_bytes, sha256_hex};
use crate::error::{Error, Result};
use crate::events::audit::RequestContext;
use crate::protocol::form::Form;
use crate::state::AppState;
use crate::store::{AuditEvent, Client, Outcome, PushedRequest};

/// RFC 9126 §2.2.
pub(crate) const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// The parameter that marks a request as resolved from a pushed one.
pub(crate) const TICKET: &str = "par_ticket";
const TICKET_LABEL: &str = "par-ticket";
/// Client authentication parameters: never kept with the pushed request.
const CREDENTIALS: &[&str] = &["client_secret", "client_assertion", "client_assertion_type"];

/// The `/par` response (RFC 9126 §2.2), sent with 201 Created.
#[derive(Debug, Serialize)]
pub struct ParResponse {
    pub request_uri: String,
    pub expires_in: i64,
}

/// Must this client's authorization requests be pushed (RFC 9126 §5, §6)?
pub fn required_for(state: &AppState, client: &Client) -> bool {
    state.config.par.required || client.require_pushed_authorization_requests
}

/// `POST /par` (RFC 9126 §2) for the authenticated `client`, with the request body `body`
/// (already parsed as `form`) and the key of the request's checked DPoP proof `proved` (RFC
/// 9449 §10.1): the parameters to keep ([`pushed_params`]), validated by `/authorize`'s rules
/// (`authorize::validate_pushed`; its refusals as OAuth errors, §2.3), kept under a new
/// `request_uri` ([`keep`]).
pub async fn push(
    state: &AppState,
    client: &Client,
    form: &Form,
    body: &str,
    proved: Option<&Jkt>,
    ctx: &RequestContext,
) -> Result<ParResponse> {
    let params = pushed_params(client, form, body, proved)?;
    super::validate_pushed(state, &params)
        .await
        .map_err(super::Reject::into_error)?;
    keep(state, client, params, ctx).await
}

/// `POST /par` step 1 for the authenticated `client`, with the request body `body` (already
/// parsed as `form`): the parameters to keep (the client's credentials left out), once the
/// rules of RFC 9126 §2.1 hold; `proved`: the key of the request's DPoP proof, kept as
/// `dpop_jkt` (RFC 9449 §10.1). Step 2 is `/authorize`'s validation of them
/// (`authorize::validate_pushed`), step 3 [`keep`].
fn pushed_params(client: &Client, form: &Form, body: &str, proved: Option<&Jkt>) -> Result<String> {
    // RFC 9126 §2.1: "The request_uri authorization request parameter is one exception, and it
    // MUST NOT be provided."
    if form.get("request_uri").is_some() {
        return Err(Error::invalid_request(
            "request_uri must not be sent to the pushed authorization request endpoint \
             (RFC 9126 §2.1)",
        ));
    }
    if form.get(TICKET).is_some() {
        return Err(Error::invalid_request(format!(
            "{TICKET} is not an authorization request parameter"
        )));
    }
    // The client_id sent, if any, must be the one that authenticated (RFC 9126 §2.1).
    if form.get("client_id").is_some_and(|id| id != client.id) {
        return Err(Error::invalid_request(
            "client_id does not match the authenticated client",
        ));
    }
    // RFC 9449 §10.1: "If both mechanisms are used at the same time, the authorization
    // server MUST reject the request if the JWK Thumbprint in dpop_jkt does not match the
    // public key in the DPoP header."
    if let (Some(key), Some(named)) = (proved, form.get("dpop_jkt"))
        && !key.matches(named)
    {
        return Err(Error::oauth(
            ErrorCode::InvalidDpopProof,
            "dpop_jkt does not match the key of the DPoP proof (RFC 9449 §10.1)",
        ));
    }
    let params = {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        ser.append_pair("client_id", &client.id);
        for (k, v) in form_urlencoded::parse(body.as_bytes()) {
            if k != "client_id" && !CREDENTIALS.contains(&k.as_ref()) {
                ser.append_pair(&k, &v);
            }
        }
        if let Some(key) = proved.filter(|_| form.get("dpop_jkt").is_none()) {
            ser.append_pair("dpop_jkt", &key.to_b64());
        }
        ser.finish()
    };
    Ok(params)
}

/// `POST /par` step 3: keep the validated `params` under a new single-use `request_uri`.
async fn keep(
    state: &AppState,
    client: &Client,
    params: String,
    ctx: &RequestContext,
) -> Result<ParResponse> {
    let request_uri = format!(
        "{REQUEST_URI_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(random_bytes::<32>())
    );
    let now = ctx.now;
    let ttl = state.config.par.request_uri_ttl_secs;
    state
        .store
        .create_pushed_request(&PushedRequest {
            uri_hash: sha256_hex(&request_uri),
            client_id: client.id.clone(),
            params,
            created_at: now,
            expires_at: now + ttl,
        })
        .await?;
    let ev = AuditEvent::new(now, kinds::PAR_PUSHED, Outcome::Success)
        .client(&client.id)
        .ctx(ctx);
    state.audit_async(ev).await;
    Ok(ParResponse {
        request_uri,
        expires_in: ttl,
    })
}

/// Spend `request_uri` for `client_id` at `now` (RFC 9126 §4): the pushed parameters, or
/// `None` when it is unknown, spent, expired or another client's.
pub async fn redeem(
    state: &AppState,
    client_id: &str,
    request_uri: &str,
    now: i64,
) -> Result<Option<String>> {
    if !request_uri.starts_with(REQUEST_URI_PREFIX) || request_uri.len() > 256 {
        return Ok(None);
    }
    Ok(state
        .store
        .take_pushed_request(&sha256_hex(request_uri), client_id, now)
        .await?
        .map(|p| p.params))
}

/// The parameters the MAC covers: all but `prompt` and the ticket, re-encoded canonically.
fn covered(raw: &str) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in form_urlencoded::parse(raw.as_bytes()) {
        if k != "prompt" && k != TICKET {
            ser.append_pair(&k, &v);
        }
    }
    ser.finish()
}

fn mac(state: &AppState, exp: i64, raw: &str) -> String {
    let msg = format!("{exp}.{}", covered(raw));
    URL_SAFE_NO_PAD.encode(state.master.mac(TICKET_LABEL, msg.as_bytes()))
}

/// The pushed parameters with a ticket, for the steps after `/authorize`.
pub(crate) fn ticketed(state: &AppState, params: &str, now: i64) -> String {
    let exp = now + state.config.par.flow_secs;
    format!("{params}&{TICKET}={exp}.{}", mac(state, exp, params))
}

/// Does `raw` carry a valid, unexpired ticket over its parameters?
pub(crate) fn ticket_ok(state: &AppState, raw: &str, ticket: &str, now: i64) -> bool {
    let Some((exp, tag)) = ticket.split_once('.') else {
        return false;
    };
    let Ok(exp) = exp.parse::<i64>() else {
        return false;
    };
    exp > now && ct_eq(mac(state, exp, raw).as_bytes(), tag.as_bytes())
}
