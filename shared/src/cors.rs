//! CORS (Fetch Standard §3.2) for the endpoints that browser-based clients (MCP Inspector, web
//! apps) call with `fetch()` and no cookies: metadata, JWKS, registration, token, revocation,
//! userinfo at the authorization server; the MCP endpoint and its metadata at a resource
//! server. Preflights are answered `204 No Content` before any authentication (a preflight
//! never carries credentials); actual responses, errors and 401 challenges included, carry
//! `Access-Control-Allow-Origin` for an allowed origin and expose the headers a client must
//! read (`WWW-Authenticate` above all, or it can never start discovery). Credentials mode is
//! never enabled: these endpoints take bearer tokens and client credentials, not cookies.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header, request::Parts};
use axum::middleware::{self, Next};
use axum::response::Response;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// How long a browser may cache a preflight answer.
const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// Which origins get a CORS grant.
#[derive(Clone)]
pub enum Origins {
    /// `*`: any origin (only where no cookie is ever involved).
    Any,
    /// Exactly these serialized origins (`scheme://host[:port]`).
    List(Vec<String>),
    /// Whatever the predicate allows (a resource server's Origin policy).
    Predicate(Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

impl std::fmt::Debug for Origins {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Any => f.write_str("Any"),
            Self::List(l) => f.debug_tuple("List").field(l).finish(),
            Self::Predicate(_) => f.write_str("Predicate(..)"),
        }
    }
}

impl Origins {
    /// From configuration: `["*"]` (or empty) is [`Origins::Any`], anything else a list.
    pub fn from_config(entries: &[String]) -> Self {
        if entries.is_empty() || entries.iter().any(|e| e == "*") {
            Self::Any
        } else {
            Self::List(entries.to_vec())
        }
    }

    fn allow_origin(&self) -> AllowOrigin {
        match self {
            Self::Any => AllowOrigin::any(),
            Self::List(list) => {
                let list = list.clone();
                AllowOrigin::predicate(move |o: &HeaderValue, _: &Parts| {
                    o.to_str().is_ok_and(|o| list.iter().any(|a| a == o))
                })
            }
            Self::Predicate(p) => {
                let p = Arc::clone(p);
                AllowOrigin::predicate(move |o: &HeaderValue, _: &Parts| {
                    o.to_str().is_ok_and(|o| p(o))
                })
            }
        }
    }
}

/// The CORS policy of one group of routes.
#[derive(Debug, Clone)]
pub struct Cors {
    pub origins: Origins,
    pub methods: Vec<Method>,
    /// Request headers a client may send beyond the CORS-safelisted ones.
    pub allow_headers: Vec<HeaderName>,
    /// Response headers a client may read beyond the safelisted ones.
    pub expose_headers: Vec<HeaderName>,
}

impl Cors {
    /// `origins` for `methods`, with no extra headers yet.
    pub fn new(origins: Origins, methods: &[Method]) -> Self {
        Self {
            origins,
            methods: methods.to_vec(),
            allow_headers: Vec::new(),
            expose_headers: Vec::new(),
        }
    }

    pub fn allow_headers(mut self, headers: &[HeaderName]) -> Self {
        self.allow_headers.extend_from_slice(headers);
        self
    }

    pub fn expose_headers(mut self, headers: &[HeaderName]) -> Self {
        self.expose_headers.extend_from_slice(headers);
        self
    }

    /// `router`'s routes with this policy (and nothing else's: apply before merging).
    pub fn apply<S: Clone + Send + Sync + 'static>(&self, router: Router<S>) -> Router<S> {
        let layer = CorsLayer::new()
            .allow_origin(self.origins.allow_origin())
            .allow_methods(self.methods.clone())
            .allow_headers(self.allow_headers.clone())
            .expose_headers(self.expose_headers.clone())
            .max_age(PREFLIGHT_MAX_AGE);
        router
            .layer(layer)
            .layer(middleware::from_fn(preflight_no_content))
    }
}

/// A preflight's answer has no content: say so with 204 (tower-http answers 200).
async fn preflight_no_content(req: Request, next: Next) -> Response {
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let mut response = next.run(req).await;
    if preflight && response.status() == StatusCode::OK {
        *response.status_mut() = StatusCode::NO_CONTENT;
    }
    response
}
