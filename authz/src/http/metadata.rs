//! Discovery: RFC 8414 authorization-server metadata, served identically at
//! `/.well-known/oauth-authorization-server` and `/.well-known/openid-configuration`, and the
//! JWKS. Public documents: any origin may GET them (CORS), and caches may keep them briefly.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use tower_http::cors::{Any, CorsLayer};

use crate::state::AppState;
use crate::store::{AuthMethod, GrantType};

pub const JWKS_PATH: &str = "/.well-known/jwks.json";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/.well-known/openid-configuration", get(metadata))
        .route(JWKS_PATH, get(jwks))
        .layer(
            CorsLayer::new()
                .allow_origin(Any)
                .allow_methods([Method::GET]),
        )
}

/// The metadata document. Lists only what the server implements.
#[derive(Debug, Serialize)]
pub struct Metadata {
    /// Byte-identical to the configured issuer (RFC 8414 §3.3).
    pub issuer: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub grant_types_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub scopes_supported: Vec<String>,
    /// RFC 8414 §2 REQUIRED; empty until the authorization endpoint exists.
    pub response_types_supported: Vec<&'static str>,
}

pub fn build(state: &AppState) -> Metadata {
    let issuer = state.config.issuer.clone();
    Metadata {
        token_endpoint: format!("{issuer}/token"),
        jwks_uri: format!("{issuer}{JWKS_PATH}"),
        grant_types_supported: GrantType::ALL.iter().map(|g| g.as_str()).collect(),
        token_endpoint_auth_methods_supported: [
            AuthMethod::ClientSecretBasic,
            AuthMethod::ClientSecretPost,
            AuthMethod::None,
        ]
        .iter()
        .map(|m| m.as_str())
        .collect(),
        scopes_supported: state
            .scopes
            .supported()
            .iter()
            .map(|s| s.to_string())
            .collect(),
        response_types_supported: Vec::new(),
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
    // Short: a rotated-in key must reach verifiers quickly; retired keys stay published for
    // the lifetime of the tokens they signed, so old tokens keep verifying meanwhile.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    r
}
