//! Calls to a provider's token endpoint (and its revocation endpoint, RFC 7009), shared by
//! the round trip (the code) and the vault (refresh, revocation): the client authentication
//! (RFC 6749 §2.3.1) and the reading of a token response (§5.1).

use serde_json::Value;

use crate::config::upstream::{ClientAuth, Upstream};
use crate::outbound::fetch::Call;

/// The provider's token response (RFC 6749 §5.1): a Bearer token, and what came with it.
pub(crate) struct Tokens {
    pub access_token: String,
    pub id_token: Option<String>,
    pub refresh_token: Option<String>,
    pub expires_in: Option<i64>,
    pub scope: Option<String>,
}

impl Tokens {
    /// The tokens of a successful answer, when it is one (a Bearer `access_token`).
    pub(crate) fn from_response(body: &Value) -> Option<Self> {
        let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_owned);
        let bearer = text("token_type").is_some_and(|t| t.eq_ignore_ascii_case("bearer"));
        Some(Self {
            access_token: text("access_token").filter(|_| bearer)?,
            id_token: text("id_token"),
            refresh_token: text("refresh_token"),
            expires_in: body.get("expires_in").and_then(Value::as_i64),
            scope: text("scope"),
        })
    }
}

/// A form POST to `up`'s token (or revocation) endpoint, with its client authentication
/// (RFC 6749 §2.3.1).
pub(crate) fn client_call(up: &Upstream, mut fields: Vec<(String, String)>) -> Call {
    let secret = up
        .client_secret
        .as_ref()
        .map(|s| s.expose().to_owned())
        .unwrap_or_default();
    let basic = match up.client_auth {
        ClientAuth::ClientSecretBasic => Some((form_encode(&up.client_id), form_encode(&secret))),
        ClientAuth::ClientSecretPost => {
            fields.push(("client_id".to_owned(), up.client_id.clone()));
            fields.push(("client_secret".to_owned(), secret));
            None
        }
    };
    Call::Form { fields, basic }
}

/// RFC 6749 §2.3.1: the client id and secret are form-urlencoded before HTTP Basic.
fn form_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
