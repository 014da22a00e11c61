//! Calls to a provider's token endpoint (and its revocation endpoint, RFC 7009), shared by
//! the round trip (the code) and the vault (refresh, revocation): the client authentication
//! (RFC 6749 §2.3.1) and the reading of a token response (§5.1).

use base64::Engine;
use serde_json::Value;

use super::discovery::Endpoints;
use crate::config::types::SigningAlg;
use crate::config::upstream::{ClientAuth, Upstream};
use crate::crypto::random_secret;
use crate::keys::SigningKey;
use crate::outbound::fetch::Call;

/// How long a client assertion is valid (RFC 7523 §3: short).
const ASSERTION_SECS: i64 = 60;

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

/// A form POST to `up`'s token (or revocation) endpoint `to`, with its client
/// authentication (RFC 6749 §2.3.1; RFC 7523 §2.2 for `private_key_jwt`); why not, in our
/// words, when the private key cannot be used.
pub(crate) fn client_call(
    up: &Upstream,
    endpoints: &Endpoints,
    to: &url::Url,
    mut fields: Vec<(String, String)>,
    now: i64,
) -> Result<Call, String> {
    let secret = || {
        up.client_secret
            .as_ref()
            .map(|s| s.expose().to_owned())
            .unwrap_or_default()
    };
    let basic = match up.client_auth {
        ClientAuth::ClientSecretBasic => Some((form_encode(&up.client_id), form_encode(&secret()))),
        ClientAuth::ClientSecretPost => {
            fields.push(("client_id".to_owned(), up.client_id.clone()));
            fields.push(("client_secret".to_owned(), secret()));
            None
        }
        ClientAuth::PrivateKeyJwt => {
            let aud = up
                .client_assertion_audience
                .clone()
                .or_else(|| endpoints.issuer.clone())
                .unwrap_or_else(|| to.to_string());
            let claims = serde_json::json!({
                "iss": up.client_id, "sub": up.client_id, "aud": aud,
                "jti": random_secret(), "iat": now, "exp": now + ASSERTION_SECS,
            });
            let assertion = client_key(up)?
                .sign_jwt("JWT", &claims)
                .map_err(|e| format!("the client assertion could not be signed: {e}"))?;
            fields.push(("client_id".to_owned(), up.client_id.clone()));
            fields.push((
                "client_assertion_type".to_owned(),
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
            ));
            fields.push(("client_assertion".to_owned(), assertion));
            None
        }
    };
    Ok(Call::Form { fields, basic })
}

/// The `private_key_jwt` key of `up`, read from its PKCS#8 PEM file.
pub(crate) fn client_key(up: &Upstream) -> Result<SigningKey, String> {
    let path = up
        .private_key_file
        .as_ref()
        .ok_or("no private_key_file is configured")?;
    let pem = std::fs::read_to_string(path)
        .map_err(|e| format!("private_key_file {}: {e}", path.display()))?;
    let der = pem_body(&pem).ok_or("private_key_file is not a PEM \"PRIVATE KEY\" (PKCS#8)")?;
    let alg = up.private_key_alg.unwrap_or(SigningAlg::Es256);
    SigningKey::from_pkcs8(alg, &der).map_err(|e| format!("private_key_file: {e}"))
}

/// The DER of a PEM `PRIVATE KEY` block (RFC 7468 §10).
fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let start = pem.find("-----BEGIN PRIVATE KEY-----")? + "-----BEGIN PRIVATE KEY-----".len();
    let end = pem[start..].find("-----END PRIVATE KEY-----")? + start;
    let b64: String = pem[start..end].split_whitespace().collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// RFC 6749 §2.3.1: the client id and secret are form-urlencoded before HTTP Basic.
fn form_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pem_private_key_is_read_and_anything_else_refused() {
        let (_, der) = SigningKey::generate(SigningAlg::Es256).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        let pem = format!("-----BEGIN PRIVATE KEY-----\n{b64}\n-----END PRIVATE KEY-----\n");
        assert_eq!(pem_body(&pem), Some(der));
        assert_eq!(
            pem_body("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"),
            None
        );
    }
}
