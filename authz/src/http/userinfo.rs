//! `GET/POST /userinfo` (OIDC Core §5.3): claims about the user behind an access token, by
//! scope (`profile`, `email`). The bearer token comes from the `Authorization` header only
//! (RFC 6750 §2.1); errors are RFC 6750 §3 challenges.
//!
//! Accepted tokens: live access tokens (`oauth::live`: ours, unexpired, client and user live,
//! credentials unchanged, session and grant not ended) of a user, with `openid` in scope. The
//! audience is not checked: every access token we issue carries exactly one audience
//! (RFC 8707), and the UserInfo endpoint is part of this server, not a resource server that
//! could be confused with another.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::bearer::BearerToken;
use crate::error::{Error, Result};
use crate::oauth::live::{self, Audience};
use crate::state::AppState;

pub fn router(state: &AppState) -> Router<AppState> {
    let routes = Router::new().route("/userinfo", get(userinfo).post(userinfo));
    super::cors(state, &[Method::GET, Method::POST]).apply(routes)
}

/// The access token and how it came: `Authorization: Bearer`, or `Authorization: DPoP` with a
/// proof (RFC 9449 §7.1).
fn presented(headers: &HeaderMap) -> Result<(BearerToken, bool)> {
    let value = headers.get(header::AUTHORIZATION);
    if let Some(rest) = value
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("dpop"))
        .map(|(_, t)| format!("Bearer {t}"))
    {
        let v = HeaderValue::from_str(&rest)
            .map_err(|_| Error::invalid_token("the Authorization header is malformed"))?;
        return Ok((BearerToken::parse(Some(&v))?, true));
    }
    Ok((BearerToken::parse(value)?, false))
}

async fn userinfo(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response> {
    let (token, dpop) = presented(&headers)?;
    let live = live::access_token(&state, token.expose(), Audience::Any)
        .await?
        .map_err(|dead| Error::invalid_token(dead.description()))?;
    // RFC 9449 §7: a DPoP-bound token is used with a proof signed by its key, under the DPoP
    // scheme; presented as a bearer token it is refused.
    match (&live.claims.cnf, dpop) {
        (Some(cnf), true) => {
            let uri = format!("{}/userinfo", state.config.issuer);
            let jkt = match state.dpop.check(
                &headers,
                method.as_str(),
                &uri,
                Some(token.expose()),
                state.now(),
            ) {
                Ok(Some(jkt)) => jkt,
                Ok(None) => {
                    return Ok(crate::oauth::dpop::Refused {
                        error: shared::dpop::DpopError::Invalid(
                            "a DPoP proof is required with a DPoP token".into(),
                        ),
                        nonce: None,
                        resource: true,
                    }
                    .into_response());
                }
                Err(refused) => return Ok(refused.into_response()),
            };
            if !jkt.matches(&cnf.jkt) {
                return Err(Error::invalid_token(
                    "the DPoP proof was signed with another key than the token is bound to",
                ));
            }
        }
        (Some(_), false) => {
            return Err(Error::invalid_token(
                "the token is DPoP-bound: use the DPoP authorization scheme with a proof",
            ));
        }
        (None, true) => {
            return Err(Error::invalid_token(
                "the token is not DPoP-bound: use the Bearer scheme",
            ));
        }
        (None, false) => {}
    }
    let Some(user) = live.user else {
        return Err(Error::invalid_token("the token does not speak for a user"));
    };
    let scope = live.scope;
    if !scope.contains("openid") {
        return Err(Error::InsufficientScope {
            scope: "openid".into(),
        });
    }
    let mut body = json!({ "sub": user.id });
    if scope.contains("profile") {
        body["preferred_username"] = json!(user.username);
        body["name"] = json!(user.username);
    }
    if scope.contains("email")
        && let Some(email) = &user.email
    {
        body["email"] = json!(email);
        body["email_verified"] = json!(false);
    }
    let mut r = axum::Json(body).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}
