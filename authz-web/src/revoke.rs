//! `POST /revoke` (RFC 7009) and `POST /introspect` (RFC 7662): form in, client
//! authentication as at the token endpoint, JSON out.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, StatusCode};
use axum::routing::post;
use axum::{Json, Router};

use crate::error::{Error, Result};
use crate::extract::{ClientCredentials, Ctx, FormBody};
use crate::layers::{NoStore, never_cached};
use crate::limits::{Limit, limited, too_many_json};
use authz_core::clients::authentication;
use authz_core::protocol::form::{Form, MAX_BODY_BYTES};
use authz_core::protocol::{introspection, revocation};
use authz_core::state::AppState;
use authz_core::store::Client;

pub fn router(state: &AppState) -> Router<AppState> {
    let revoke_limit = Limit::new(
        state,
        "revoke",
        state.config.rate_limits.revoke,
        too_many_json,
    );
    let introspect_limit = Limit::new(
        state,
        "introspect",
        state.config.rate_limits.introspect,
        too_many_json,
    );
    let cors = crate::layers::cors(state, &[Method::POST]);
    // Never cached: RFC 7009 §2.2 answers, RFC 7662 §2.2 token metadata.
    let revoke = never_cached(post(revoke), NoStore::CacheControl);
    let introspect = never_cached(post(introspect), NoStore::CacheControl);
    let revoke = Router::new().route("/revoke", limited(revoke, &revoke_limit));
    let mut introspect = Router::new().route("/introspect", limited(introspect, &introspect_limit));
    // Introspection is for resource servers; browsers get CORS there only when configured.
    if state.config.cors_introspect {
        introspect = cors.apply(introspect);
    }
    cors.apply(revoke)
        .merge(introspect)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// The client of a form request, authenticated as at the token endpoint.
async fn authenticated(
    state: &AppState,
    credentials: authentication::ClientCredentials,
    form: &Form,
) -> Result<std::sync::Arc<Client>> {
    let presented = authentication::presented(&form.client_credentials(credentials))?;
    Ok(
        authentication::authenticate_request(state.client_services(), &presented, state.now())
            .await?,
    )
}

async fn revoke(
    State(state): State<AppState>,
    Ctx(ctx): Ctx,
    ClientCredentials(credentials): ClientCredentials,
    FormBody { form, .. }: FormBody,
) -> Result<StatusCode> {
    let client = authenticated(&state, credentials, &form).await?;
    let token = form.require("token")?;
    revocation::revoke(&state, &client, token, form.get("token_type_hint"), &ctx).await?;
    // RFC 7009 §2.2: 200 whether or not the token was valid.
    Ok(StatusCode::OK)
}

async fn introspect(
    State(state): State<AppState>,
    ClientCredentials(credentials): ClientCredentials,
    FormBody { form, .. }: FormBody,
) -> Result<Json<introspection::Introspection>> {
    let client = authenticated(&state, credentials, &form).await?;
    if !client.may_introspect || client.is_public() {
        // RFC 7662 §2.1: the endpoint is protected; this client is not one of the callers.
        return Err(Error::unauthorized_client("this client may not introspect tokens").into());
    }
    let token = form.require("token")?;
    let answer = introspection::introspect(&state, token, form.get("token_type_hint")).await?;
    Ok(Json(answer))
}
