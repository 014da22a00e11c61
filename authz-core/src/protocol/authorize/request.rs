//! The checklist of an authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1), one step
//! a function, in the order RFC 6749 §4.1.2.1 asks for: the client and its redirect URI first
//! (while either is in doubt the user gets a page, never a redirect), then everything else,
//! each refusal sent back to the client's redirect URI ([`Back`]).
//!
//! 1. the client ([`client`]); 2. the redirect URI ([`redirect_uri`]); `state`;
//! 3. how the request came ([`how_sent`]: PAR requirement, `request_uri`, request objects) and
//!    what it asks for ([`response_type`]); 4. PKCE ([`code_challenge`]) and the DPoP key
//!    ([`dpop_jkt`]); 5. scope ([`scope`]); 6. the resource ([`resource`]); 7. the OIDC
//!    parameters: `nonce`, `prompt` ([`prompt`]), `max_age`, `acr_values`, `id_token_hint`
//!    ([`hinted_user`]).

use shared::scope::OFFLINE_ACCESS;
use shared::{ErrorCode, ScopeSet};

use super::{AuthorizeRequest, ErrorRedirect, Origin, Prompt, Reject, description, page};
use crate::policy::scope::OPENID;
use crate::protocol::form::Form;
use crate::protocol::id_token_hint;
use crate::protocol::pkce;
use crate::protocol::resource::select_audience;
use crate::state::AppState;
use crate::store::{Client, GrantType};

const MAX_STATE_BYTES: usize = 2048;
const MAX_NONCE_BYTES: usize = 512;

/// Validate the parameters `form` (received as `raw`) that came as `origin` says.
pub(super) async fn validate_form(
    state: &AppState,
    raw: &str,
    form: &Form,
    origin: Origin,
) -> Result<AuthorizeRequest, Reject> {
    // 1. The client.
    let client = client(state, form).await?;
    // 2. The redirect URI; from here on refusals go back to it, with `state`.
    let redirect_uri = redirect_uri(form, &client)?;
    let back = Back {
        issuer: &state.config.issuer,
        redirect_uri: &redirect_uri,
        state: form.get("state"),
    };
    if back.state.is_some_and(|s| s.len() > MAX_STATE_BYTES) {
        return Err(back.fail(ErrorCode::InvalidRequest, "state is too long"));
    }
    // 3. How the request came, and what it asks for.
    how_sent(state, form, &client, origin, &back)?;
    response_type(form, &client, &back)?;
    // 4. PKCE, and the DPoP key the code is bound to.
    let code_challenge = code_challenge(form, &back)?;
    let dpop_jkt = dpop_jkt(state, form, &back)?;
    // 5. Scope, within what the client may ever be granted.
    let scope = scope(state, form, &client, &back)?;
    // 6. Audience (RFC 8707).
    let resource = resource(state, form, &client, &back)?;
    // 7. OIDC parameters.
    let nonce = form.get("nonce");
    if nonce.is_some_and(|n| n.len() > MAX_NONCE_BYTES) {
        return Err(back.fail(ErrorCode::InvalidRequest, "nonce is too long"));
    }
    let prompt = prompt(form, &back)?;
    let max_age = max_age(form, &back)?;
    // OIDC Core §3.1.2.1 acr_values: voluntary classes in order of preference; ours are
    // `pwd` and the multi-factor one. Asking for the multi-factor class forces the second
    // factor (a client that wants it depends on it; `acr` in the ID token says what was done).
    let require_mfa = form
        .get("acr_values")
        .is_some_and(|v| v.split(' ').any(|a| a == state.config.mfa.acr_value));
    let hint_sub = hinted_user(state, form, &client, &back)?;
    Ok(AuthorizeRequest {
        issuer: state.config.issuer.clone(),
        state: back.state.map(str::to_owned),
        client,
        redirect_uri: redirect_uri.clone(),
        scope,
        resource,
        code_challenge: code_challenge.to_owned(),
        dpop_jkt,
        nonce: nonce.map(str::to_owned),
        prompt,
        max_age,
        require_mfa,
        hint_sub,
        raw: raw.to_owned(),
    })
}

/// Where a refusal goes once the redirect URI is trusted (RFC 6749 §4.1.2.1, RFC 9207 `iss`).
struct Back<'a> {
    issuer: &'a str,
    redirect_uri: &'a str,
    state: Option<&'a str>,
}

impl Back<'_> {
    fn fail(&self, error: ErrorCode, description: &str) -> Reject {
        Reject::Redirect(ErrorRedirect {
            issuer: self.issuer.to_owned(),
            redirect_uri: self.redirect_uri.to_owned(),
            state: self.state.map(str::to_owned),
            error,
            description: description.to_owned(),
        })
    }
}

/// Step 1: The client named by `client_id`. A metadata-document client is resolved (fetched) here;
/// a refused document is a page, never a redirect to a URI nothing vouches for.
async fn client(state: &AppState, form: &Form) -> Result<Client, Reject> {
    let client_id = form.get("client_id").ok_or_else(|| {
        page(
            "Invalid sign-in request",
            "The request does not name a client (client_id).",
        )
    })?;
    crate::clients::cimd::resolve(state.client_services(), client_id)
        .await
        .map_err(Reject::Server)?
        .map_err(|r| {
            page(
                "Application not accepted",
                format!(
                    "The application's metadata document could not be used: {}.",
                    r.0
                ),
            )
        })?
        .map(|c| Client::clone(&c))
        .ok_or_else(|| {
            page(
                "Unknown application",
                "The application that sent you here is not registered with this server.",
            )
        })
}

/// Step 2: The redirect URI: registered, exactly (RFC 9700 §2.1). OIDC Core §3.1.2.1 makes it
/// REQUIRED and §3.1.2.2 says the server MUST verify it is present; a plain OAuth request may omit
/// it when the client registered exactly one (RFC 6749 §3.1.2.3).
fn redirect_uri(form: &Form, client: &Client) -> Result<String, Reject> {
    let oidc = form
        .get("scope")
        .is_some_and(|s| s.split(' ').any(|t| t == OPENID));
    match form.get("redirect_uri") {
        Some(uri) if redirect_uri_matches(&client.redirect_uris, uri) => Ok(uri.to_owned()),
        Some(_) => Err(page(
            "Invalid redirect address",
            "The address this application asked to return to is not registered for it, so you \
             were not sent there.",
        )),
        None if oidc => Err(page(
            "Invalid sign-in request",
            "The request does not say where to return (redirect_uri), which OpenID Connect \
             requires.",
        )),
        None if client.redirect_uris.len() == 1 => Ok(client.redirect_uris[0].clone()),
        None => Err(page(
            "Invalid sign-in request",
            "The request does not say where to return (redirect_uri).",
        )),
    }
}

/// Step 3a: How the request came: pushed where it must be (RFC 9126 §5/§6), no `request_uri` left
/// (RFC 9126 §2.1; OIDC Core §6.2), no request object (OIDC Core §6, §3.1.2.6).
fn how_sent(
    state: &AppState,
    form: &Form,
    client: &Client,
    origin: Origin,
    back: &Back<'_>,
) -> Result<(), Reject> {
    // RFC 9126 §5/§6: a client that must push (or every client, `AUTHZ_REQUIRE_PAR`) is
    // refused here without a pushed request; the redirect URI is registered, so it is told.
    if origin == Origin::Front && super::par::required_for(state, client) {
        return Err(back.fail(
            ErrorCode::InvalidRequest,
            "this client must use pushed authorization requests: POST the parameters to the \
             pushed_authorization_request_endpoint, then send request_uri (RFC 9126)",
        ));
    }
    // RFC 9126 §2.1: request_uri is the one parameter that cannot be pushed. At /authorize
    // ours were resolved before this point; another is a request object by reference, not
    // supported (OIDC Core §6.2, §3.1.2.6).
    if form.get("request_uri").is_some() {
        return Err(if origin == Origin::Front {
            back.fail(
                ErrorCode::RequestUriNotSupported,
                "the request_uri parameter is supported only for pushed authorization requests \
                 (RFC 9126)",
            )
        } else {
            back.fail(
                ErrorCode::InvalidRequest,
                "request_uri cannot be part of a pushed authorization request (RFC 9126 §2.1)",
            )
        });
    }
    // OIDC Core §6 request objects: not supported (§3.1.2.6 `request_not_supported`).
    if form.get("request").is_some() {
        return Err(back.fail(
            ErrorCode::RequestNotSupported,
            "the request parameter (request objects) is not supported",
        ));
    }
    Ok(())
}

/// Step 3b: `response_type=code` (RFC 6749 §4.1.1) in `response_mode=query`, for a client allowed
/// the code flow.
fn response_type(form: &Form, client: &Client, back: &Back<'_>) -> Result<(), Reject> {
    match form.get("response_type") {
        Some("code") => {}
        Some(_) => {
            return Err(back.fail(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ));
        }
        None => {
            return Err(back.fail(ErrorCode::InvalidRequest, "response_type is missing"));
        }
    }
    if form.get("response_mode").is_some_and(|m| m != "query") {
        return Err(back.fail(
            ErrorCode::InvalidRequest,
            "only response_mode=query is supported",
        ));
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(back.fail(
            ErrorCode::UnauthorizedClient,
            "this client may not use the authorization code flow",
        ));
    }
    Ok(())
}

/// Step 4a: PKCE S256, for every client (RFC 9700 §2.1.1, RFC 7636 §4.2): the challenge.
fn code_challenge<'f>(form: &'f Form, back: &Back<'_>) -> Result<&'f str, Reject> {
    let challenge = match (
        form.get("code_challenge"),
        form.get("code_challenge_method"),
    ) {
        (None, _) => {
            return Err(back.fail(
                ErrorCode::InvalidRequest,
                "PKCE is required: send code_challenge and code_challenge_method=S256",
            ));
        }
        (Some(c), Some("S256")) => c,
        (Some(_), _) => {
            return Err(back.fail(
                ErrorCode::InvalidRequest,
                "code_challenge_method must be S256 (plain is not accepted)",
            ));
        }
    };
    if !pkce::valid_challenge(challenge) {
        return Err(back.fail(
            ErrorCode::InvalidRequest,
            "code_challenge must be 43 base64url characters (RFC 7636 §4.2)",
        ));
    }
    Ok(challenge)
}

/// Step 4b: RFC 9449 §10: `dpop_jkt` binds the code to a DPoP key (ignored with DPoP off, as any
/// parameter a server does not know, RFC 6749 §3.1).
fn dpop_jkt(state: &AppState, form: &Form, back: &Back<'_>) -> Result<Option<String>, Reject> {
    let Some(v) = form.get("dpop_jkt").filter(|_| state.dpop.enabled) else {
        return Ok(None);
    };
    let jkt = shared::dpop::Jkt::from_b64(v).ok_or_else(|| {
        back.fail(
            ErrorCode::InvalidRequest,
            "dpop_jkt must be the base64url SHA-256 JWK thumbprint (RFC 7638) of the client's \
             DPoP key (RFC 9449 §10)",
        )
    })?;
    Ok(Some(jkt.to_b64()))
}

/// Step 5: The scope asked for, within what the client may ever be granted (RFC 6749 §3.3);
/// `offline_access` only for a client that may refresh.
fn scope(
    state: &AppState,
    form: &Form,
    client: &Client,
    back: &Back<'_>,
) -> Result<ScopeSet, Reject> {
    let scope = state
        .scopes
        .resolve(form.get("scope"), &client.scopes, &[])
        .map_err(|e| back.fail(ErrorCode::InvalidScope, &description(&e)))?;
    if scope.contains(OFFLINE_ACCESS) && !client.allows_grant(GrantType::RefreshToken) {
        return Err(back.fail(
            ErrorCode::InvalidScope,
            "offline_access: this client may not use refresh tokens",
        ));
    }
    Ok(scope)
}

/// Step 6: The one resource the code is for (RFC 8707 §2).
fn resource(
    state: &AppState,
    form: &Form,
    client: &Client,
    back: &Back<'_>,
) -> Result<String, Reject> {
    select_audience(
        &form.all("resource"),
        &[],
        client,
        &state.config.default_resource,
    )
    .map_err(|e| back.fail(ErrorCode::InvalidTarget, &description(&e)))
}

/// Step 7a: OIDC Core §3.1.2.1 `prompt`: known values, combined only as §3.1.2.1/§3.1.2.6 allow.
fn prompt(form: &Form, back: &Back<'_>) -> Result<Prompt, Reject> {
    let mut prompt = Prompt::default();
    for p in form
        .get("prompt")
        .unwrap_or("")
        .split(' ')
        .filter(|p| !p.is_empty())
    {
        match p {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            "select_account" => prompt.select_account = true,
            other => {
                return Err(back.fail(
                    ErrorCode::InvalidRequest,
                    &format!("unsupported prompt value {other:?}"),
                ));
            }
        }
    }
    // OIDC Core §3.1.2.6: an account cannot be chosen without showing the user a page.
    if prompt.none && prompt.select_account {
        return Err(back.fail(
            ErrorCode::AccountSelectionRequired,
            "prompt=none cannot be combined with select_account: choosing an account needs the \
             user",
        ));
    }
    if prompt.none && (prompt.login || prompt.consent) {
        return Err(back.fail(
            ErrorCode::InvalidRequest,
            "prompt=none cannot be combined with other values (OIDC Core §3.1.2.1)",
        ));
    }
    Ok(prompt)
}

/// Step 7b: OIDC Core §3.1.2.1 `max_age`: a non-negative number of seconds.
fn max_age(form: &Form, back: &Back<'_>) -> Result<Option<i64>, Reject> {
    let Some(v) = form.get("max_age") else {
        return Ok(None);
    };
    let max_age = v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
        back.fail(
            ErrorCode::InvalidRequest,
            "max_age must be a non-negative integer",
        )
    })?;
    Ok(Some(max_age))
}

/// Step 7c: OIDC Core §3.1.2.1 `id_token_hint`: the user the client expects, from an ID token of
/// ours for this client (an expired hint is fine).
fn hinted_user(
    state: &AppState,
    form: &Form,
    client: &Client,
    back: &Back<'_>,
) -> Result<Option<String>, Reject> {
    let Some(raw) = form.get("id_token_hint").filter(|h| !h.is_empty()) else {
        return Ok(None);
    };
    match id_token_hint::verify(state, raw) {
        Some(h) if h.aud == client.id => Ok(Some(h.sub)),
        _ => Err(back.fail(
            ErrorCode::InvalidRequest,
            "id_token_hint is not an ID token this server issued to this client",
        )),
    }
}

/// Does `requested` match one of the client's registered redirect URIs? Exact string
/// comparison (RFC 9700 §2.1), except that a loopback IP redirect may use any port
/// (RFC 8252 §7.3) — scheme, host, path and query must still match exactly.
pub fn redirect_uri_matches(registered: &[String], requested: &str) -> bool {
    if registered.iter().any(|r| r == requested) {
        return true;
    }
    let Some(req) = loopback_without_port(requested) else {
        return false;
    };
    registered
        .iter()
        .filter_map(|r| loopback_without_port(r))
        .any(|r| r == req)
}

/// `http://127.0.0.1:PORT/path?q` → `http://127.0.0.1/path?q`; `None` if not a loopback IP URI.
fn loopback_without_port(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("http://")?;
    let (host, tail) = if let Some(r) = rest.strip_prefix("[::1]") {
        ("[::1]", r)
    } else if let Some(r) = rest.strip_prefix("127.0.0.1") {
        ("127.0.0.1", r)
    } else {
        return None;
    };
    let tail = match tail.strip_prefix(':') {
        Some(p) => {
            let digits = p.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || digits > 5 {
                return None;
            }
            &p[digits..]
        }
        None => tail,
    };
    if !(tail.is_empty() || tail.starts_with('/') || tail.starts_with('?')) {
        return None;
    }
    Some(format!("http://{host}{tail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_matching_is_exact_except_loopback_port() {
        let reg = vec![
            "https://app.example.com/cb".to_owned(),
            "http://127.0.0.1/callback".to_owned(),
            "http://[::1]:8000/cb?x=1".to_owned(),
        ];
        assert!(redirect_uri_matches(&reg, "https://app.example.com/cb"));
        for bad in [
            "https://app.example.com/cb/",
            "https://app.example.com/cb?x",
            "https://APP.example.com/cb",
            "https://app.example.com/c%62",
            "https://app.example.com/cb#f",
            "https://app.example.com.evil.com/cb",
            "https://app.example.com:443/cb",
            "http://127.0.0.1:8080/callback/../x",
            "http://127.0.0.1:8080/callbackx",
            "http://127.0.0.1.evil.com/callback",
            "http://127.0.0.1:/callback",
            "http://localhost:8080/callback",
            "http://[::1]:9/cb",
        ] {
            assert!(!redirect_uri_matches(&reg, bad), "{bad} matched");
        }
        assert!(redirect_uri_matches(
            &reg,
            "http://127.0.0.1:53172/callback"
        ));
        assert!(redirect_uri_matches(&reg, "http://127.0.0.1/callback"));
        assert!(redirect_uri_matches(&reg, "http://[::1]:1234/cb?x=1"));
    }
}
