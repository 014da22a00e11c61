//! [`FormBody`]: the `application/x-www-form-urlencoded` body of an OAuth endpoint (`/token`,
//! `/par`, `/device_authorization`, `/revoke`, `/introspect`), parsed by the core's strict
//! parser (`protocol::form`: RFC 6749 §3.1/§3.2) after the `Content-Type` check (RFC 6749 §4).
//! An unreadable body (over the limit, cut off) is `invalid_request`, as is a refused form.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};

use crate::error::{Error, WebError};
use crate::extract::content_type;
use authz_core::protocol::form::Form;
use authz_core::state::AppState;

/// A parsed OAuth form and the body it was parsed from.
#[derive(Debug)]
pub(crate) struct FormBody {
    pub form: Form,
    /// The body as received (`/par` keeps the parameters as sent).
    pub raw: Bytes,
}

impl FromRequest<AppState> for FormBody {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let content_type = content_type(req.headers()).map(str::to_owned);
        let raw = Bytes::from_request(req, state)
            .await
            .map_err(|e| Error::invalid_request(format!("unreadable body: {e}")))?;
        let form = Form::from_request(content_type.as_deref(), &raw)?;
        Ok(Self { form, raw })
    }
}
