//! The test identity provider of the ID-JAG and remote-key-set tests (`id_jag`, `round3`): an
//! ES256 key whose JWK Set a loopback https host serves (`testkit::https::HttpsHost`, its
//! certificate trusted through `cimd.extra_roots`, `127.0.0.1:<port>` allow-listed past the
//! SSRF guard), JWTs signed with it, and the jwt-bearer grant that presents them.

use authz::config::Config;
use authz::store::{AuthMethod, GrantType};
use serde_json::{Value, json};
use testkit::https::{HttpsHost, Route};

use crate::support::{MCP, TestApp};

/// The jwt-bearer grant type (RFC 7523 §2.1).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The `typ` of an Identity Assertion JWT Authorization Grant.
pub const ID_JAG_TYP: &str = "oauth-id-jag+jwt";

/// An identity provider: its https host, and the key (`kid`) whose set it serves at `path`.
pub struct TestIdp {
    pub host: HttpsHost,
    pub pem: Vec<u8>,
    /// The JWK Set as first published (to put back after a test took it down).
    pub jwks: Value,
    pub kid: &'static str,
    pub path: &'static str,
}

impl TestIdp {
    /// A fresh host serving a fresh key `kid` at `path`.
    pub async fn start(path: &'static str, kid: &'static str) -> Self {
        let host = HttpsHost::start().await;
        let (pem, jwks) = publish_key(&host, path, kid);
        Self {
            host,
            pem,
            jwks,
            kid,
            path,
        }
    }

    /// The URL of the key set.
    pub fn jwks_uri(&self) -> String {
        self.host.url(self.path)
    }

    /// Let the server fetch from this host: trust its certificate, allow its loopback address
    /// past the SSRF guard, and give up after a second.
    pub fn trust(&self, c: &mut Config) {
        c.cimd.extra_roots = Some(self.host.ca_pem.clone());
        c.cimd.allowed_private_hosts = vec![self.host.host_port()];
        c.cimd.timeout_secs = 1;
    }

    /// An ID-JAG: `claims` signed with the IdP's key.
    pub fn mint(&self, claims: &Value) -> String {
        sign(&self.pem, Some(ID_JAG_TYP), self.kid, claims)
    }
}

/// A fresh ES256 key `kid`, its JWK Set served by `host` at `path`: (PKCS#8 DER, the set).
pub fn publish_key(host: &HttpsHost, path: &str, kid: &str) -> (Vec<u8>, Value) {
    let (pem, jwk) = testkit::https::es256_key(kid);
    let jwks = json!({ "keys": [jwk] });
    host.put(path, Route::json(&jwks));
    (pem, jwks)
}

/// Sign `claims` with `pem` (ES256), `typ` and `kid` as given.
pub fn sign(pem: &[u8], typ: Option<&str>, kid: &str, claims: &Value) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.typ = typ.map(str::to_owned);
    header.kid = Some(kid.into());
    let key = jsonwebtoken::EncodingKey::from_ec_der(pem);
    jsonwebtoken::encode(&header, claims, &key).unwrap()
}

/// A confidential client `id` that may use the jwt-bearer grant for `scope` at `resources`:
/// its secret.
pub async fn jwt_bearer_client(app: &TestApp, id: &str, scope: &str, resources: &[&str]) -> String {
    app.client(
        id,
        AuthMethod::ClientSecretBasic,
        &[GrantType::JwtBearer],
        scope,
        resources,
    )
    .await
    .unwrap()
}

/// The same, for `notes:read` at MCP.
pub async fn agent_client(app: &TestApp, id: &str) -> String {
    jwt_bearer_client(app, id, "notes:read", &[MCP]).await
}

/// The jwt-bearer grant with `assertion` as `client` (id, secret), with `extra` form fields.
pub async fn jwt_bearer(
    app: &TestApp,
    client: (&str, &str),
    assertion: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![("grant_type", JWT_BEARER), ("assertion", assertion)];
    form.extend_from_slice(extra);
    app.token(&form, Some(client)).await
}
