//! The back channel to the authorization server. For every administrative tool call this
//! server first trades the caller's token for a short-lived management-API token (RFC 8693
//! token exchange, authenticated as its own client), then calls `/api/v1` with that. The
//! user's token is only ever the `subject_token` of the exchange: it is never sent as a bearer
//! credential anywhere (MCP authorization spec: no token passthrough).

use serde_json::Value;
use shared::claims::TOKEN_TYPE_ACCESS_TOKEN;
use shared::secret::ClientSecret;

use crate::config::Config;

/// Why a back-channel call did not work; `message` is fit for the tool's caller.
#[derive(Debug, thiserror::Error)]
pub enum AuthzError {
    #[error("administrative tools are not configured on this server (no client secret)")]
    NotConfigured,
    /// The authorization server refused (status, OAuth error code, description).
    #[error("{code}: {description}")]
    Refused {
        status: u16,
        code: String,
        description: String,
    },
    #[error("the authorization server could not be reached: {0}")]
    Transport(String),
    /// The upstream identity provider's user-info endpoint failed (not the authorization
    /// server): what went wrong, in our words.
    #[error("the identity provider's user-info endpoint {0}")]
    Upstream(String),
}

/// The largest user-info document read from an upstream provider (a profile is a few KiB).
pub(crate) const MAX_USERINFO_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct AuthzClient {
    http: reqwest::Client,
    base: String,
    client_id: String,
    secret: Option<ClientSecret>,
    audience: String,
}

impl AuthzClient {
    pub fn new(config: &Config, http: reqwest::Client) -> Self {
        Self {
            http,
            base: config.authz_url(),
            client_id: config.client_id.clone(),
            secret: config.load_client_secret(),
            audience: config.management_audience(),
        }
    }

    async fn read(resp: reqwest::Response) -> Result<Value, AuthzError> {
        let status = resp.status().as_u16();
        let body: Value = resp
            .json()
            .await
            .map_err(|e| AuthzError::Transport(e.to_string()))?;
        if (200..300).contains(&status) {
            return Ok(body);
        }
        Err(AuthzError::Refused {
            status,
            code: body["error"].as_str().unwrap_or("error").to_owned(),
            description: body["error_description"]
                .as_str()
                .unwrap_or("request refused")
                .to_owned(),
        })
    }

    /// RFC 8693: the caller's token for a management-API token carrying `scope` (or, with
    /// `None`, everything the subject token and the user's roles allow).
    pub async fn exchange(
        &self,
        subject_token: &str,
        scope: Option<&str>,
    ) -> Result<String, AuthzError> {
        self.exchange_for(subject_token, ("resource", &self.audience), scope)
            .await
    }

    /// RFC 8693 with `audience` = an upstream provider's id: the user's token of that provider,
    /// kept by the authorization server (its token vault), never our own token sent upstream.
    pub async fn exchange_upstream(
        &self,
        subject_token: &str,
        provider: &str,
    ) -> Result<String, AuthzError> {
        self.exchange_for(subject_token, ("audience", provider), None)
            .await
    }

    async fn exchange_for(
        &self,
        subject_token: &str,
        target: (&str, &str),
        scope: Option<&str>,
    ) -> Result<String, AuthzError> {
        let secret = self.secret.as_ref().ok_or(AuthzError::NotConfigured)?;
        let mut form = vec![
            (
                "grant_type",
                "urn:ietf:params:oauth:grant-type:token-exchange",
            ),
            ("subject_token", subject_token),
            ("subject_token_type", TOKEN_TYPE_ACCESS_TOKEN),
            target,
        ];
        if let Some(s) = scope {
            form.push(("scope", s));
        }
        let resp = self
            .http
            .post(format!("{}/token", self.base))
            .basic_auth(&self.client_id, Some(secret.expose()))
            .form(&form)
            .send()
            .await
            .map_err(|e| AuthzError::Transport(e.to_string()))?;
        let body = Self::read(resp).await?;
        body["access_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| AuthzError::Transport("token response without access_token".into()))
    }

    /// GET the upstream provider's user-info endpoint (`MCP_UPSTREAM_USERINFO_URL`, configured)
    /// with the provider's token: its JSON object, read up to [`MAX_USERINFO_BYTES`].
    pub async fn upstream_userinfo(&self, url: &str, token: &str) -> Result<Value, AuthzError> {
        upstream_userinfo(&self.http, url, token).await
    }

    /// The Shared Signals poll endpoint of this server's stream: from the transmitter's
    /// metadata (`/.well-known/ssf-configuration`), then the stream configuration
    /// (authenticated as this server's client). It must be on the authorization server's own
    /// origin: this server's credentials go nowhere else.
    pub async fn ssf_poll_endpoint(&self) -> Result<String, AuthzError> {
        let secret = self.secret.as_ref().ok_or(AuthzError::NotConfigured)?;
        let get = |url: String, auth: bool| {
            let mut req = self.http.get(url);
            if auth {
                req = req.basic_auth(&self.client_id, Some(secret.expose()));
            }
            async move {
                let resp = req
                    .send()
                    .await
                    .map_err(|e| AuthzError::Transport(e.to_string()))?;
                Self::read(resp).await
            }
        };
        let meta = get(
            format!("{}/.well-known/ssf-configuration", self.base),
            false,
        )
        .await?;
        let config_endpoint = self.same_origin(meta["configuration_endpoint"].as_str())?;
        let stream = get(config_endpoint, true).await?;
        self.same_origin(stream["delivery"]["endpoint_url"].as_str())
    }

    fn same_origin(&self, url: Option<&str>) -> Result<String, AuthzError> {
        let origin = |u: &str| url::Url::parse(u).ok().map(|u| u.origin());
        match url {
            Some(u) if origin(u).is_some() && origin(u) == origin(&self.base) => Ok(u.to_owned()),
            other => Err(AuthzError::Transport(format!(
                "Shared Signals endpoint {other:?} is not on the authorization server's origin"
            ))),
        }
    }

    /// One RFC 8936 poll: acknowledge `ack`, report `errors`, get what is pending.
    pub async fn ssf_poll(
        &self,
        endpoint: &str,
        ack: &[String],
        errors: &serde_json::Map<String, Value>,
    ) -> Result<Value, AuthzError> {
        let body = serde_json::json!({
            "ack": ack,
            "setErrs": errors,
            "returnImmediately": true,
            "maxEvents": 100,
        });
        self.post_as_client(endpoint, body.to_string()).await
    }

    /// Report denied tool calls (`POST /resource-events`, a JSON body `{"events": […]}`
    /// already serialized): the answer (`{"accepted": n}`) once the authorization server has
    /// recorded them.
    pub async fn report_denials(&self, body: String) -> Result<Value, AuthzError> {
        let url = format!("{}/resource-events", self.base);
        self.post_as_client(&url, body).await
    }

    /// POST a JSON body authenticated as this server's client (`client_secret_basic`): the
    /// Shared Signals poll and the denial reports. Only ever to the authorization server.
    async fn post_as_client(&self, url: &str, json: String) -> Result<Value, AuthzError> {
        let secret = self.secret.as_ref().ok_or(AuthzError::NotConfigured)?;
        let resp = self
            .http
            .post(url)
            .basic_auth(&self.client_id, Some(secret.expose()))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(json)
            .send()
            .await
            .map_err(|e| AuthzError::Transport(e.to_string()))?;
        Self::read(resp).await
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Call the management API with an exchanged token.
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, AuthzError> {
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(token)
            .query(query);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| AuthzError::Transport(e.to_string()))?;
        Self::read(resp).await
    }
}

/// [`AuthzClient::upstream_userinfo`] with `http`: no redirects are followed (the client is
/// built so), the body is abandoned past the cap, and every failure is the provider's.
pub(crate) async fn upstream_userinfo(
    http: &reqwest::Client,
    url: &str,
    token: &str,
) -> Result<Value, AuthzError> {
    let failed = |what: String| AuthzError::Upstream(what);
    let mut resp = http
        .get(url)
        .bearer_auth(token)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|_| failed("could not be reached".into()))?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(failed(format!("answered HTTP {status}")));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|_| failed("broke off its answer".into()))?
    {
        if body.len() + chunk.len() > MAX_USERINFO_BYTES {
            return Err(failed(format!(
                "answered more than {MAX_USERINFO_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    match serde_json::from_slice::<Value>(&body) {
        Ok(v) if v.is_object() => Ok(v),
        _ => Err(failed("did not answer a JSON object".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use testkit::https::{HttpsHost, Route};

    #[tokio::test]
    async fn an_upstream_profile_is_bounded_and_its_failures_are_the_providers() {
        let host = HttpsHost::start().await;
        let pem = std::fs::read(&host.ca_pem).unwrap();
        let http = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        host.put("/ok", Route::json(&serde_json::json!({ "sub": "u1" })));
        let huge = "x".repeat(MAX_USERINFO_BYTES);
        host.put("/huge", Route::json(&serde_json::json!({ "sub": huge })));
        host.put(
            "/list",
            Route::json(&serde_json::json!(["not", "an", "object"])),
        );
        let ok = upstream_userinfo(&http, &host.url("/ok"), "t")
            .await
            .unwrap();
        assert_eq!(ok["sub"], "u1");
        for (path, says) in [
            ("/huge", "more than"),
            ("/list", "JSON object"),
            ("/missing", "HTTP 404"),
        ] {
            let e = upstream_userinfo(&http, &host.url(path), "t")
                .await
                .unwrap_err();
            let text = e.to_string();
            assert!(text.starts_with("the identity provider's"), "{text}");
            assert!(text.contains(says), "{path}: {text}");
        }
    }
}
