//! Discovery: RFC 8414 authorization-server metadata, served identically at
//! `/.well-known/oauth-authorization-server` and `/.well-known/openid-configuration`, and the
//! JWKS. Public documents: any origin may GET them (CORS), and caches may keep them briefly.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use authz_core::state::AppState;
use authz_core::store::{AuthMethod, GrantType};

pub(crate) const JWKS_PATH: &str = "/.well-known/jwks.json";
use authz_core::keys::JWKS_MAX_AGE_SECS;

pub fn router(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/.well-known/openid-configuration", get(metadata))
        .route(JWKS_PATH, get(jwks));
    crate::layers::cors(state, &[Method::GET]).apply(routes)
}

/// The metadata document (RFC 8414 §2, OIDC Discovery §3). Lists only what the server
/// implements.
#[derive(Debug, Serialize)]
pub struct Metadata {
    /// Byte-identical to the configured issuer (RFC 8414 §3.3).
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub userinfo_endpoint: String,
    pub end_session_endpoint: String,
    pub revocation_endpoint: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// draft-ietf-oauth-client-id-metadata-document §5: `client_id` may be a metadata URL.
    pub client_id_metadata_document_supported: bool,
    pub grant_types_supported: Vec<&'static str>,
    /// draft-ietf-oauth-identity-assertion-authz-grant (MCP enterprise-managed authorization):
    /// the ID-JAG profile of the jwt-bearer grant, only when a trusted issuer is configured.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub authorization_grant_profiles_supported: Vec<&'static str>,
    pub response_types_supported: Vec<&'static str>,
    pub response_modes_supported: Vec<&'static str>,
    pub code_challenge_methods_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    /// RFC 8414 §2: the algorithms a `private_key_jwt` assertion may use.
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    pub scopes_supported: Vec<String>,
    pub subject_types_supported: Vec<&'static str>,
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    pub claims_supported: Vec<&'static str>,
    pub acr_values_supported: Vec<String>,
    pub prompt_values_supported: Vec<&'static str>,
    /// RFC 9207 §3: responses from the authorization endpoint carry `iss`.
    pub authorization_response_iss_parameter_supported: bool,
    pub request_parameter_supported: bool,
    pub request_uri_parameter_supported: bool,
    /// RFC 8628 §4: only when the device flow is enabled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_authorization_endpoint: Option<String>,
    /// RFC 9126 §5.
    pub pushed_authorization_request_endpoint: String,
    /// RFC 9126 §5: every client must push (`AUTHZ_REQUIRE_PAR`); clients may also be
    /// required one by one (their `require_pushed_authorization_requests`).
    pub require_pushed_authorization_requests: bool,
    pub claims_parameter_supported: bool,
    pub frontchannel_logout_supported: bool,
    /// RFC 9449 §5.1: the DPoP proof algorithms accepted; only when DPoP is on.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dpop_signing_alg_values_supported: Vec<&'static str>,
}

pub fn build(state: &AppState) -> Metadata {
    let issuer = state.config.issuer.clone();
    let mut scopes: Vec<String> = state
        .scopes
        .supported()
        .iter()
        .map(|s| s.to_string())
        .collect();
    scopes.push("openid".to_owned());
    scopes.sort();
    Metadata {
        authorization_endpoint: format!("{issuer}/authorize"),
        token_endpoint: format!("{issuer}/token"),
        jwks_uri: format!("{issuer}{JWKS_PATH}"),
        userinfo_endpoint: format!("{issuer}/userinfo"),
        end_session_endpoint: format!("{issuer}/logout"),
        revocation_endpoint: format!("{issuer}/revoke"),
        introspection_endpoint: format!("{issuer}/introspect"),
        revocation_endpoint_auth_methods_supported: vec![
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        introspection_endpoint_auth_methods_supported: vec![
            "client_secret_basic",
            "client_secret_post",
        ],
        registration_endpoint: state
            .config
            .browser
            .registration_open
            .then(|| format!("{issuer}/register")),
        client_id_metadata_document_supported: state.config.cimd.enabled,
        grant_types_supported: GrantType::ALL
            .iter()
            .filter(|g| authz_core::protocol::grant::enabled(state, **g))
            .map(|g| g.as_str())
            .collect(),
        authorization_grant_profiles_supported: if authz_core::protocol::grant::enabled(
            state,
            GrantType::JwtBearer,
        ) {
            vec![authz_core::protocol::id_jag::GRANT_PROFILE]
        } else {
            Vec::new()
        },
        response_types_supported: vec!["code"],
        response_modes_supported: vec!["query"],
        code_challenge_methods_supported: vec!["S256"],
        token_endpoint_auth_methods_supported: [
            AuthMethod::ClientSecretBasic,
            AuthMethod::ClientSecretPost,
            AuthMethod::None,
            AuthMethod::PrivateKeyJwt,
        ]
        .iter()
        .map(|m| m.as_str())
        .collect(),
        token_endpoint_auth_signing_alg_values_supported:
            authz_core::clients::assertion::ALGORITHMS
                .iter()
                .map(|a| format!("{a:?}"))
                .collect(),
        scopes_supported: scopes,
        subject_types_supported: vec!["public"],
        id_token_signing_alg_values_supported: vec![
            state.keys.current().signers(state.now()).1.alg().as_str(),
        ],
        claims_supported: vec![
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "at_hash",
            "sid",
            "azp",
            "preferred_username",
            "name",
            "email",
            "email_verified",
            "amr",
            "acr",
        ],
        // OIDC Discovery §3: the classes a sign-in here satisfies (password alone; with the
        // TOTP second factor), the latter asked for with `acr_values`.
        acr_values_supported: vec![
            authz_core::keys::issuer::ACR_PASSWORD.to_owned(),
            state.config.mfa.acr_value.clone(),
        ],
        prompt_values_supported: vec!["none", "login", "consent", "select_account"],
        authorization_response_iss_parameter_supported: true,
        request_parameter_supported: false,
        request_uri_parameter_supported: false,
        device_authorization_endpoint: state
            .config
            .device
            .enabled
            .then(|| format!("{issuer}/device_authorization")),
        pushed_authorization_request_endpoint: format!("{issuer}/par"),
        require_pushed_authorization_requests: state.config.par.required,
        claims_parameter_supported: false,
        frontchannel_logout_supported: false,
        dpop_signing_alg_values_supported: if state.dpop.enabled {
            shared::dpop::SUPPORTED_ALGS.to_vec()
        } else {
            Vec::new()
        },
        issuer,
    }
}

async fn metadata(State(state): State<AppState>) -> Response {
    let mut r = axum::Json(build(&state)).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}

async fn jwks(State(state): State<AppState>) -> Response {
    let body = state.keys.current().jwks_json.clone();
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jwk-set+json"),
    );
    // Short: a rotated-in key is published `key_prepublish_secs` (≥ this) before it signs, and
    // retired keys stay published for the lifetime of the tokens they signed.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_str(&format!("public, max-age={JWKS_MAX_AGE_SECS}"))
            .unwrap_or_else(|_| HeaderValue::from_static("no-cache")),
    );
    r
}
