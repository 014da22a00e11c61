//! The authorization endpoint's rules (RFC 6749 §4.1, RFC 7636, RFC 8707, RFC 9207, RFC 9700
//! §2.1, OIDC Core §3.1.2): validate a request, decide whether the user must sign in or
//! consent, and issue single-use codes. The web edge (`authz_web`'s `browser`) only renders
//! pages and follows what this module decides.
//!
//! Validation order (RFC 6749 §4.1.2.1): the client and its redirect URI first; while either
//! is in doubt nothing is sent to the redirect URI (an error page instead, so the endpoint is
//! never an open redirector). Every later error goes back to the client with `error`,
//! `error_description`, `state` and `iss`.

use shared::scope::{OFFLINE_ACCESS, OIDC_SCOPES};
use shared::{ErrorCode, ScopeSet};

use crate::crypto::{random_bytes, sha256_hex};
use crate::error::{Error, Result};
use crate::policy::scope::OPENID;
use crate::protocol::form::Form;
use crate::protocol::id_token_hint;
use crate::protocol::pkce;
use crate::protocol::resource::select_audience;
use crate::state::AppState;
use crate::store::{AuthCode, Client, GrantType, Session, User};

const MAX_STATE_BYTES: usize = 2048;
const MAX_NONCE_BYTES: usize = 512;

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
    pub fn into_error(self) -> Error {
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
        .filter(|u| u.starts_with(crate::protocol::par::REQUEST_URI_PREFIX))
    {
        // RFC 9126 §4: client_id is REQUIRED beside request_uri, and must be the pushing one.
        let client_id = form.get("client_id").ok_or_else(|| {
            page(
                "Invalid sign-in request",
                "The request does not name a client (client_id).",
            )
        })?;
        let pushed = crate::protocol::par::redeem(state, client_id, request_uri, now)
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
        req.raw = crate::protocol::par::ticketed(state, &pushed, now);
        return Ok(req);
    }
    if let Some(ticket) = form.get(crate::protocol::par::TICKET) {
        if !crate::protocol::par::ticket_ok(state, raw, ticket, now) {
            return Err(page("Sign-in request expired", EXPIRED_PUSHED));
        }
        return validate_form(state, raw, &form, Origin::Pushed).await;
    }
    validate_form(state, raw, &form, Origin::Front).await
}

/// Validate parameters pushed to `/par` (RFC 9126 §2.1): the rules of `/authorize`.
pub async fn validate_pushed(
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

async fn validate_form(
    state: &AppState,
    raw: &str,
    form: &Form,
    origin: Origin,
) -> std::result::Result<AuthorizeRequest, Reject> {
    // 1. The client.
    let client_id = form.get("client_id").ok_or_else(|| {
        page(
            "Invalid sign-in request",
            "The request does not name a client (client_id).",
        )
    })?;
    // A metadata-document client is resolved (fetched) here; a refused document is a page,
    // never a redirect to a URI nothing vouches for.
    let client = crate::clients::cimd::resolve(state, client_id)
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
        })?;
    // 2. The redirect URI: registered, exactly (RFC 9700 §2.1). OIDC Core §3.1.2.1 makes it
    // REQUIRED and §3.1.2.2 says the server MUST verify it is present; a plain OAuth request
    // may omit it when the client registered exactly one (RFC 6749 §3.1.2.3).
    let oidc = form
        .get("scope")
        .is_some_and(|s| s.split(' ').any(|t| t == OPENID));
    let redirect_uri = match form.get("redirect_uri") {
        Some(uri) if redirect_uri_matches(&client.redirect_uris, uri) => uri.to_owned(),
        Some(_) => {
            return Err(page(
                "Invalid redirect address",
                "The address this application asked to return to is not registered for it, so \
                 you were not sent there.",
            ));
        }
        None if oidc => {
            return Err(page(
                "Invalid sign-in request",
                "The request does not say where to return (redirect_uri), which OpenID Connect \
                 requires.",
            ));
        }
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => {
            return Err(page(
                "Invalid sign-in request",
                "The request does not say where to return (redirect_uri).",
            ));
        }
    };
    let req_state = form.get("state").map(str::to_owned);
    let fail = |error: ErrorCode, description: &str| {
        Reject::Redirect(ErrorRedirect {
            issuer: state.config.issuer.clone(),
            redirect_uri: redirect_uri.clone(),
            state: req_state.clone(),
            error,
            description: description.to_owned(),
        })
    };
    if req_state
        .as_ref()
        .is_some_and(|s| s.len() > MAX_STATE_BYTES)
    {
        return Err(fail(ErrorCode::InvalidRequest, "state is too long"));
    }
    // 3. What is asked for.
    // RFC 9126 §5/§6: a client that must push (or every client, `AUTHZ_REQUIRE_PAR`) is
    // refused here without a pushed request; the redirect URI is registered, so it is told.
    if origin == Origin::Front && crate::protocol::par::required_for(state, &client) {
        return Err(fail(
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
            fail(
                ErrorCode::RequestUriNotSupported,
                "the request_uri parameter is supported only for pushed authorization requests \
                 (RFC 9126)",
            )
        } else {
            fail(
                ErrorCode::InvalidRequest,
                "request_uri cannot be part of a pushed authorization request (RFC 9126 §2.1)",
            )
        });
    }
    // OIDC Core §6 request objects: not supported (§3.1.2.6 `request_not_supported`).
    if form.get("request").is_some() {
        return Err(fail(
            ErrorCode::RequestNotSupported,
            "the request parameter (request objects) is not supported",
        ));
    }
    match form.get("response_type") {
        Some("code") => {}
        Some(_) => {
            return Err(fail(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ));
        }
        None => return Err(fail(ErrorCode::InvalidRequest, "response_type is missing")),
    }
    if form.get("response_mode").is_some_and(|m| m != "query") {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "only response_mode=query is supported",
        ));
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(fail(
            ErrorCode::UnauthorizedClient,
            "this client may not use the authorization code flow",
        ));
    }
    // 4. PKCE S256, for every client (RFC 9700 §2.1.1).
    let code_challenge = match (
        form.get("code_challenge"),
        form.get("code_challenge_method"),
    ) {
        (None, _) => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "PKCE is required: send code_challenge and code_challenge_method=S256",
            ));
        }
        (Some(_), Some("S256")) => form.get("code_challenge").unwrap_or_default(),
        (Some(_), _) => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "code_challenge_method must be S256 (plain is not accepted)",
            ));
        }
    };
    if !pkce::valid_challenge(code_challenge) {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "code_challenge must be 43 base64url characters (RFC 7636 §4.2)",
        ));
    }
    // 4b. RFC 9449 §10: `dpop_jkt` binds the code to a DPoP key (ignored with DPoP off, as
    // any parameter a server does not know, RFC 6749 §3.1).
    let dpop_jkt = match form.get("dpop_jkt").filter(|_| state.dpop.enabled) {
        None => None,
        Some(v) => Some(
            shared::dpop::Jkt::from_b64(v)
                .ok_or_else(|| {
                    fail(
                        ErrorCode::InvalidRequest,
                        "dpop_jkt must be the base64url SHA-256 JWK thumbprint (RFC 7638) of \
                         the client's DPoP key (RFC 9449 §10)",
                    )
                })?
                .to_b64(),
        ),
    };
    // 5. Scope, within what the client may ever be granted.
    let scope = state
        .scopes
        .resolve(form.get("scope"), &client.scopes, &[])
        .map_err(|e| fail(ErrorCode::InvalidScope, &description(&e)))?;
    if scope.contains(OFFLINE_ACCESS) && !client.allows_grant(GrantType::RefreshToken) {
        return Err(fail(
            ErrorCode::InvalidScope,
            "offline_access: this client may not use refresh tokens",
        ));
    }
    // 6. Audience (RFC 8707).
    let resource = select_audience(
        &form.all("resource"),
        &[],
        &client,
        &state.config.default_resource,
    )
    .map_err(|e| fail(ErrorCode::InvalidTarget, &description(&e)))?;
    // 7. OIDC parameters.
    let nonce = form.get("nonce").map(str::to_owned);
    if nonce.as_ref().is_some_and(|n| n.len() > MAX_NONCE_BYTES) {
        return Err(fail(ErrorCode::InvalidRequest, "nonce is too long"));
    }
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
                return Err(fail(
                    ErrorCode::InvalidRequest,
                    &format!("unsupported prompt value {other:?}"),
                ));
            }
        }
    }
    // OIDC Core §3.1.2.6: an account cannot be chosen without showing the user a page.
    if prompt.none && prompt.select_account {
        return Err(fail(
            ErrorCode::AccountSelectionRequired,
            "prompt=none cannot be combined with select_account: choosing an account needs the \
             user",
        ));
    }
    if prompt.none && (prompt.login || prompt.consent) {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "prompt=none cannot be combined with other values (OIDC Core §3.1.2.1)",
        ));
    }
    let max_age = match form.get("max_age") {
        None => None,
        Some(v) => Some(v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
            fail(
                ErrorCode::InvalidRequest,
                "max_age must be a non-negative integer",
            )
        })?),
    };
    // OIDC Core §3.1.2.1 acr_values: voluntary classes in order of preference; ours are
    // `pwd` and the multi-factor one. Asking for the multi-factor class forces the second
    // factor (a client that wants it depends on it; `acr` in the ID token says what was done).
    let require_mfa = form
        .get("acr_values")
        .is_some_and(|v| v.split(' ').any(|a| a == state.config.mfa.acr_value));
    // OIDC Core §3.1.2.1: id_token_hint names the user the client expects; ours, for this
    // client (an expired hint is fine).
    let hint_sub = match form.get("id_token_hint").filter(|h| !h.is_empty()) {
        None => None,
        Some(raw) => match id_token_hint::verify(state, raw) {
            Some(h) if h.aud == client.id => Some(h.sub),
            _ => {
                return Err(fail(
                    ErrorCode::InvalidRequest,
                    "id_token_hint is not an ID token this server issued to this client",
                ));
            }
        },
    };
    Ok(AuthorizeRequest {
        issuer: state.config.issuer.clone(),
        client,
        redirect_uri,
        state: req_state,
        scope,
        resource,
        code_challenge: code_challenge.to_owned(),
        dpop_jkt,
        nonce,
        prompt,
        max_age,
        require_mfa,
        hint_sub,
        raw: raw.to_owned(),
    })
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
    pub fn client_identity_assured(&self) -> bool {
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
