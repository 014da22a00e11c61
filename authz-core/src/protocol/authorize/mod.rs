//! The authorization endpoint's rules (RFC 6749 §4.1, RFC 7636, RFC 8707, RFC 9207, RFC 9700
//! §2.1, OIDC Core §3.1.2): validate a request, decide whether the user must sign in or
//! consent, and issue single-use codes. The web edge (`authz_web`'s `browser`) only renders
//! pages and follows what this module decides.
//!
//! Validation order (RFC 6749 §4.1.2.1): the client and its redirect URI first; while either
//! is in doubt nothing is sent to the redirect URI (an error page instead, so the endpoint is
//! never an open redirector). Every later error goes back to the client with `error`,
//! `error_description`, `state` and `iss`. The checklist itself is [`request`]; pushed requests
//! (RFC 9126), which are validated by the same rules, are [`par`].

pub mod par;
mod request;

use shared::scope::OIDC_SCOPES;
use shared::{ErrorCode, ScopeSet};

use crate::crypto::{random_bytes, sha256_hex};
use crate::error::{Error, Result};
use crate::protocol::form::Form;
use crate::state::AppState;
use crate::store::{AuthCode, Client, Session, User};
pub use request::redirect_uri_matches;
use request::validate_form;

/// A validated authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    /// Our issuer (RFC 9207 `iss` in every response).
    pub issuer: String,
    pub client: Client,
    pub redirect_uri: String,
    pub state: Option<String>,
    /// What the client asked for, already within what it may ever get.
    pub scope: ScopeSet,
    pub resource: String,
    pub code_challenge: String,
    /// RFC 9449 §10 `dpop_jkt`: the DPoP key (its thumbprint, base64url) the code is bound to.
    pub dpop_jkt: Option<String>,
    pub nonce: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    /// `acr_values` asked for the multi-factor class (`[mfa] acr_value`): the user must have
    /// signed in with a second factor (OIDC Core §3.1.2.1 `acr_values`).
    pub require_mfa: bool,
    /// The user named by a verified `id_token_hint` (OIDC Core §3.1.2.1); only that user may
    /// be signed in for this request.
    pub hint_sub: Option<String>,
    /// The parameters exactly as received; the login and consent forms carry them along and
    /// they are validated again on every step.
    pub raw: String,
}

/// OIDC Core §3.1.2.1 `prompt`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
    pub select_account: bool,
}

/// Why a request cannot proceed.
#[derive(Debug)]
pub enum Reject {
    /// The client or redirect URI cannot be trusted: tell the user, never redirect.
    Page { title: String, message: String },
    /// Tell the client, at its redirect URI.
    Redirect(ErrorRedirect),
    /// The server itself failed (storage unreachable…): neither the client's nor the user's
    /// doing, answered as the error says (a storage outage is a 503 with `Retry-After`).
    Server(Error),
}

impl Reject {
    /// The refusal as an OAuth error for a JSON endpoint (`/par`, RFC 9126 §2.3).
    pub(crate) fn into_error(self) -> Error {
        match self {
            Reject::Page { message, .. } => Error::invalid_request(message),
            Reject::Redirect(e) => Error::oauth(e.error, e.description),
            Reject::Server(e) => e,
        }
    }
}

/// An error response for the client's redirect URI (RFC 6749 §4.1.2.1, RFC 9207 §2).
#[derive(Debug)]
pub struct ErrorRedirect {
    /// Our issuer, sent as `iss` (RFC 9207).
    pub issuer: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub error: ErrorCode,
    pub description: String,
}

fn page(title: &str, message: impl Into<String>) -> Reject {
    Reject::Page {
        title: title.to_owned(),
        message: message.into(),
    }
}

/// Where the parameters being validated come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// The browser, as sent (`/authorize` without `request_uri`).
    Front,
    /// A pushed request (RFC 9126): resolved from its `request_uri`, or carried on with a
    /// valid `par_ticket` by the sign-in and consent steps.
    Pushed,
    /// The pushed authorization request endpoint itself (RFC 9126 §2.1).
    ParEndpoint,
}

const EXPIRED_PUSHED: &str = "This sign-in request has expired, was already used, or was not \
     made for this application. Go back to the application and start signing in again.";

/// Validate the parameters of `GET/POST /authorize` (`raw` is the query string or form body).
///
/// With `request_uri` (RFC 9126 §4) the pushed parameters are spent and validated instead —
/// only `client_id` and `request_uri` are taken from the browser — and the request carries
/// them on with a `par_ticket` (`protocol::par`).
pub async fn validate(
    state: &AppState,
    raw: &str,
) -> std::result::Result<AuthorizeRequest, Reject> {
    let form = Form::parse(raw.as_bytes()).map_err(|e| {
        page(
            "Invalid sign-in request",
            format!("The request is malformed: {}", description(&e)),
        )
    })?;
    let now = state.now();
    // Only our own request URIs are resolved; any other is a request object by reference
    // (OIDC Core §6.2), answered `request_uri_not_supported` once the client is known.
    if let Some(request_uri) = form
        .get("request_uri")
        .filter(|u| u.starts_with(par::REQUEST_URI_PREFIX))
    {
        // RFC 9126 §4: client_id is REQUIRED beside request_uri, and must be the pushing one.
        let client_id = form.get("client_id").ok_or_else(|| {
            page(
                "Invalid sign-in request",
                "The request does not name a client (client_id).",
            )
        })?;
        let pushed = par::redeem(state, client_id, request_uri, now)
            .await
            .map_err(Reject::Server)?
            .ok_or_else(|| page("Sign-in request expired", EXPIRED_PUSHED))?;
        let pushed_form = Form::parse(pushed.as_bytes()).map_err(|_| {
            page(
                "Invalid sign-in request",
                "The pushed request is malformed.",
            )
        })?;
        let mut req = validate_form(state, &pushed, &pushed_form, Origin::Pushed).await?;
        req.raw = par::ticketed(state, &pushed, now);
        return Ok(req);
    }
    if let Some(ticket) = form.get(par::TICKET) {
        if !par::ticket_ok(state, raw, ticket, now) {
            return Err(page("Sign-in request expired", EXPIRED_PUSHED));
        }
        return validate_form(state, raw, &form, Origin::Pushed).await;
    }
    validate_form(state, raw, &form, Origin::Front).await
}

/// Validate parameters pushed to `/par` (RFC 9126 §2.1): the rules of `/authorize`.
pub(crate) async fn validate_pushed(
    state: &AppState,
    params: &str,
) -> std::result::Result<AuthorizeRequest, Reject> {
    let form = Form::parse(params.as_bytes()).map_err(|e| {
        page(
            "Invalid request",
            format!("The request is malformed: {}", description(&e)),
        )
    })?;
    validate_form(state, params, &form, Origin::ParEndpoint).await
}

fn description(e: &Error) -> String {
    match e {
        Error::OAuth { description, .. } => description.to_string(),
        other => other.to_string(),
    }
}

impl AuthorizeRequest {
    /// Must the user (re-)authenticate, given their current session? Also when the session
    /// is someone else's than the `id_token_hint` names (OIDC Core §3.1.2.1).
    pub fn needs_login(&self, session: Option<&Session>, now: i64) -> bool {
        let Some(s) = session else { return true };
        if self.prompt.login || !self.is_hinted_user(&s.user_id) {
            return true;
        }
        // A multi-factor class was asked for and this session has none: step up.
        if self.require_mfa && !s.is_multi_factor() {
            return true;
        }
        // OIDC Core §3.1.2.1: max_age — re-authenticate when the last sign-in is older.
        self.max_age.is_some_and(|max| now - s.auth_time > max)
    }

    /// Must `user` have signed in with a second factor for this request: the client asked for
    /// it (`acr_values`), or one of the user's roles requires it (`[mfa] required_roles`)?
    pub fn wants_mfa(&self, state: &AppState, user: &User) -> bool {
        self.require_mfa || state.config.mfa.required_for(&user.roles)
    }

    /// May `user_id` be the one signed in for this request? Anyone, unless an `id_token_hint`
    /// names a user.
    pub fn is_hinted_user(&self, user_id: &str) -> bool {
        self.hint_sub.as_deref().is_none_or(|h| h == user_id)
    }

    /// The request to continue with after a fresh sign-in: `prompt=login` and
    /// `select_account` have been satisfied, and so has `max_age` (auth_time is now).
    pub fn raw_after_login(&self) -> String {
        self.raw_with_prompt(&["login", "select_account"], None)
    }

    /// The request with the `prompt` values in `remove` taken out and `add` put in: the two
    /// choices of the account-selection page (continue as this user; sign in as another).
    pub fn raw_with_prompt(&self, remove: &[&str], add: Option<&str>) -> String {
        let mut prompt_seen = false;
        let mut pairs: Vec<(String, String)> = form_urlencoded::parse(self.raw.as_bytes())
            .filter_map(|(k, v)| {
                if k == "prompt" {
                    prompt_seen = true;
                    let rest: Vec<&str> = v
                        .split(' ')
                        .filter(|p| !p.is_empty() && !remove.contains(p) && Some(*p) != add)
                        .chain(add)
                        .collect();
                    (!rest.is_empty()).then(|| (k.into_owned(), rest.join(" ")))
                } else {
                    Some((k.into_owned(), v.into_owned()))
                }
            })
            .collect();
        if let (false, Some(a)) = (prompt_seen, add) {
            pairs.push(("prompt".to_owned(), a.to_owned()));
        }
        pairs
            .into_iter()
            .fold(
                form_urlencoded::Serializer::new(String::new()),
                |mut s, (k, v)| {
                    s.append_pair(&k, &v);
                    s
                },
            )
            .finish()
    }

    /// The scope granted to `user`: the request within the user's roles and the OIDC scopes
    /// (RFC 6749 §3.3: the server may grant less than asked; the token response says what).
    pub fn granted_scope(&self, state: &AppState, user: &User) -> ScopeSet {
        let roles = state
            .config
            .role_scopes(user.roles.iter().map(String::as_str));
        let oidc = ScopeSet::from_tokens(OIDC_SCOPES).unwrap_or_default();
        self.scope.intersection(&roles.union(&oidc))
    }

    /// Can the client's identity be assured (RFC 8252 §8.6)? A confidential client
    /// authenticates at the token endpoint; a public one only through its redirect URI, which
    /// proves nothing when it is loopback or a private-use scheme: any program on the user's
    /// machine can listen there and use the client's id.
    pub(crate) fn client_identity_assured(&self) -> bool {
        if !self.client.is_public() {
            return true;
        }
        url::Url::parse(&self.redirect_uri).is_ok_and(|u| {
            u.scheme() == "https"
                && !matches!(u.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"))
        })
    }

    /// Is consent needed for `scope`? Always with `prompt=consent`, and always for a client
    /// whose identity cannot be assured (RFC 8252 §8.6: such requests are processed as if no
    /// earlier approval existed, so a local program cannot obtain a code silently — not even
    /// with `prompt=none`, which is answered `consent_required`). Otherwise not for first-party
    /// clients, nor when the user already approved at least this scope for this client and
    /// this resource (RFC 8707 §2.2).
    pub async fn needs_consent(
        &self,
        state: &AppState,
        user: &User,
        scope: &ScopeSet,
    ) -> Result<bool> {
        if self.prompt.consent || !self.client_identity_assured() {
            return Ok(true);
        }
        if self.client.skip_consent {
            return Ok(false);
        }
        let Some(stored) = state
            .store
            .get_consent(&user.id, &self.client.id, &self.resource)
            .await?
        else {
            return Ok(true);
        };
        let stored = ScopeSet::parse(&stored).unwrap_or_default();
        Ok(!scope.difference(&stored).is_empty())
    }

    /// Issue a code and build the success redirect (RFC 6749 §4.1.2, RFC 9207 `iss`).
    pub async fn issue_code(
        &self,
        state: &AppState,
        user: &User,
        session: &Session,
        scope: &ScopeSet,
    ) -> Result<String> {
        use base64::Engine;
        let code = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>());
        let now = state.now();
        let record = AuthCode {
            code_hash: sha256_hex(&code),
            client_id: self.client.id.clone(),
            user_id: user.id.clone(),
            sid: session.sid.clone(),
            redirect_uri: self.redirect_uri.clone(),
            code_challenge: self.code_challenge.clone(),
            resource: self.resource.clone(),
            scope: scope.to_string(),
            nonce: self.nonce.clone(),
            auth_time: session.auth_time,
            created_at: now,
            expires_at: now + state.config.browser.code_ttl_secs,
            used_at: None,
            family_id: None,
            dpop_jkt: self.dpop_jkt.clone(),
        };
        state.store.create_code(&record).await?;
        Ok(redirect_with(
            &self.redirect_uri,
            &[
                ("code", Some(code.as_str())),
                ("state", self.state.as_deref()),
                ("iss", Some(&state.config.issuer)),
            ],
        ))
    }

    /// An error redirect for this request.
    pub fn error(&self, error: ErrorCode, description: &str) -> ErrorRedirect {
        ErrorRedirect {
            issuer: self.issuer.clone(),
            redirect_uri: self.redirect_uri.clone(),
            state: self.state.clone(),
            error,
            description: description.to_owned(),
        }
    }
}

impl ErrorRedirect {
    /// The URL to send the browser to.
    pub fn location(&self) -> String {
        let issuer = self.issuer.as_str();
        redirect_with(
            &self.redirect_uri,
            &[
                ("error", Some(self.error.as_str())),
                (
                    "error_description",
                    Some(&shared::error_description(&self.description)),
                ),
                ("state", self.state.as_deref()),
                ("iss", Some(issuer)),
            ],
        )
    }
}

/// Append parameters to a redirect URI, keeping its own query (RFC 6749 §3.1.2).
fn redirect_with(base: &str, params: &[(&str, Option<&str>)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        if let Some(v) = v {
            ser.append_pair(k, v);
        }
    }
    let extra = ser.finish();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{extra}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_keeps_existing_query() {
        assert_eq!(
            redirect_with(
                "https://a/cb?x=1",
                &[("code", Some("c d")), ("state", None)]
            ),
            "https://a/cb?x=1&code=c+d"
        );
    }
}
