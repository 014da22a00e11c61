//! `authz-web`: the authorization server's HTTP surface over `authz-core`. Thin handlers
//! (extract typed inputs, call the core, map), one module per endpoint family, each with its
//! own `router()`; the typed inputs (`extract`); one error mapping (`error`); the cross-cutting
//! layers, `no-store` among them (`layers`).

mod api;
mod browser;
pub mod console;
pub mod context;
mod device;
pub mod error;
pub mod extract;
mod health;
pub mod layers;
pub mod limits;
pub mod metadata;
pub mod metrics;
mod par;
mod register;
pub mod resource_events;
mod revoke;
mod ssf;
mod token;
mod upstream_logout;
mod userinfo;

use axum::Router;

use authz_core::state::AppState;

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .merge(token::router(&state))
        .merge(device::router(&state))
        .merge(par::router(&state))
        .merge(browser::router(&state))
        .merge(userinfo::router(&state))
        .merge(register::router(&state))
        .merge(revoke::router(&state))
        .merge(upstream_logout::router())
        .merge(api::router())
        .merge(metadata::router(&state))
        .merge(health::router())
        .merge(ssf::router(&state))
        .merge(resource_events::router(&state))
        .fallback(not_found);
    layers::around(routes, &state).with_state(state)
}

async fn not_found() -> error::WebError {
    error::WebError(error::Error::NotFound(
        "this endpoint (see /.well-known/oauth-authorization-server)".into(),
    ))
}
