//! Sign-in flows against the discovered authorization server: password grant, authorization
//! code + PKCE with a loopback redirect listener (RFC 8252 §7.3), and API keys
//! (client_credentials); refreshing and revoking.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use shared::secret::{AccessToken, RefreshToken};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::discovery::Endpoints;
use crate::error::{ClientError, Result};
use crate::tokens::{SignInMethod, Tokens};

/// Unix seconds (the client's own clock: `shared::clock`).
pub fn now() -> i64 {
    use shared::clock::Clock;
    shared::clock::SystemClock.now()
}

/// POST the token endpoint; a token set or the server's error.
pub async fn token_request(
    http: &reqwest::Client,
    ep: &Endpoints,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
    client_id: &str,
    method: SignInMethod,
) -> Result<Tokens> {
    token_request_with(http, ep, form, basic, client_id, method, None).await
}

/// [`token_request`] with a DPoP proof by `dpop` (RFC 9449 §5), retried once with the
/// server's nonce on `use_dpop_nonce` (§8).
pub async fn token_request_with(
    http: &reqwest::Client,
    ep: &Endpoints,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
    client_id: &str,
    method: SignInMethod,
    dpop: Option<&shared::dpop::DpopKey>,
) -> Result<Tokens> {
    let mut nonce: Option<String> = None;
    let (status, body) = loop {
        let mut req = http.post(&ep.token_endpoint).form(form);
        if let Some((id, secret)) = basic {
            req = req.basic_auth(id, Some(secret));
        }
        if let Some(key) = dpop {
            let proof = key.proof("POST", &ep.token_endpoint, now(), None, nonce.as_deref());
            req = req.header("DPoP", proof);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let offered = resp
            .headers()
            .get("dpop-nonce")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body: Value = resp
            .json()
            .await
            .map_err(|e| ClientError::Protocol(format!("token response: {e}")))?;
        if dpop.is_some()
            && nonce.is_none()
            && body["error"] == "use_dpop_nonce"
            && let Some(n) = offered
        {
            nonce = Some(n);
            continue;
        }
        break (status, body);
    };
    if !status.is_success() {
        return Err(ClientError::SignIn(format!(
            "{}: {}",
            body["error"].as_str().unwrap_or("error"),
            body["error_description"].as_str().unwrap_or("refused")
        )));
    }
    let access_token = body["access_token"]
        .as_str()
        .ok_or_else(|| ClientError::Protocol("no access_token".into()))?
        .to_owned();
    Ok(Tokens {
        access_token: AccessToken::new(access_token),
        refresh_token: body["refresh_token"].as_str().map(RefreshToken::new),
        expires_at: now() + body["expires_in"].as_i64().unwrap_or(300),
        scope: body["scope"].as_str().unwrap_or_default().to_owned(),
        client_id: client_id.to_owned(),
        method,
        dpop_bound: body["token_type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("dpop")),
        dpop_key: None,
    })
}

/// A PKCE pair (RFC 7636 §4.1–4.2): 256-bit verifier, S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(shared::crypto::random_bytes::<32>());
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    (verifier, URL_SAFE_NO_PAD.encode(digest.as_ref()))
}

/// The loopback listener of a browser sign-in and the URL to open.
#[derive(Debug)]
pub struct BrowserSignIn {
    pub url: String,
    pub redirect_uri: String,
    listener: tokio::net::TcpListener,
    verifier: String,
    state: String,
}

impl BrowserSignIn {
    /// `dpop`: the key the code will be redeemed with, named as `dpop_jkt` so that the code
    /// is bound to it (RFC 9449 §10; a server without DPoP ignores the parameter).
    pub async fn start(
        ep: &Endpoints,
        client_id: &str,
        scope: &str,
        dpop: Option<&shared::dpop::DpopKey>,
    ) -> Result<Self> {
        let auth = ep.authorization_endpoint.as_deref().ok_or_else(|| {
            ClientError::Protocol("the authorization server has no authorization endpoint".into())
        })?;
        // RFC 8252 §7.3: loopback IP literal, any port.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(ClientError::transport)?;
        let port = listener
            .local_addr()
            .map_err(ClientError::transport)?
            .port();
        let redirect_uri = format!("http://127.0.0.1:{port}/callback");
        let (verifier, challenge) = pkce();
        let state = URL_SAFE_NO_PAD.encode(shared::crypto::random_bytes::<16>());
        let mut query = form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", &redirect_uri);
        if !scope.is_empty() {
            query.append_pair("scope", scope);
        }
        if let Some(key) = dpop {
            query.append_pair("dpop_jkt", &key.jkt().to_b64());
        }
        let query = query
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256")
            .append_pair("resource", &ep.resource)
            .finish();
        Ok(Self {
            url: format!("{auth}?{query}"),
            redirect_uri,
            listener,
            verifier,
            state,
        })
    }

    /// Wait for the browser to come back, check `state` and `iss` (RFC 9207), redeem the code.
    pub async fn finish(
        self,
        http: &reqwest::Client,
        ep: &Endpoints,
        client_id: &str,
        timeout: std::time::Duration,
        dpop: Option<&shared::dpop::DpopKey>,
    ) -> Result<Tokens> {
        let params = tokio::time::timeout(timeout, self.wait())
            .await
            .map_err(|_| ClientError::SignIn("no answer from the browser in time".into()))??;
        if params.get("state") != Some(&self.state) {
            return Err(ClientError::SignIn(
                "state mismatch: not our request".into(),
            ));
        }
        check_iss(&params, ep)?;
        if let Some(err) = params.get("error") {
            return Err(ClientError::SignIn(format!(
                "{err}: {}",
                params
                    .get("error_description")
                    .map(String::as_str)
                    .unwrap_or("")
            )));
        }
        let code = params
            .get("code")
            .ok_or_else(|| ClientError::Protocol("callback without a code".into()))?;
        let form = [
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("code", code.as_str()),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("code_verifier", self.verifier.as_str()),
        ];
        // With `--dpop` the code is redeemed with a proof: the tokens are bound (RFC 9449 §5).
        token_request_with(
            http,
            ep,
            &form,
            None,
            client_id,
            SignInMethod::Browser,
            dpop,
        )
        .await
    }

    async fn wait(&self) -> Result<std::collections::HashMap<String, String>> {
        loop {
            let (mut sock, _) = self
                .listener
                .accept()
                .await
                .map_err(ClientError::transport)?;
            let mut buf = vec![0u8; 8192];
            let n = sock.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).into_owned();
            let target = head.split(' ').nth(1).unwrap_or("").to_owned();
            let Some(query) = target.strip_prefix("/callback?") else {
                let _ = sock
                    .write_all(
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    )
                    .await;
                continue;
            };
            let body = "<!doctype html><meta charset=utf-8><title>Signed in</title>\
                        <p>You can close this window and return to the terminal.";
            let resp = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\n\
                 cache-control: no-store\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(resp.as_bytes()).await;
            return Ok(form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect());
        }
    }
}

/// RFC 9207 §2.4: the authorization response's `iss` must be the issuer we started with, and
/// must be there at all when the server advertises that it sends it (otherwise a response
/// from another server — a mix-up attack — could pass by simply leaving it out).
pub fn check_iss(params: &std::collections::HashMap<String, String>, ep: &Endpoints) -> Result<()> {
    match params.get("iss") {
        Some(iss) if iss != &ep.issuer => Err(ClientError::SignIn(format!(
            "mix-up: the response came from {iss}, not {} (RFC 9207)",
            ep.issuer
        ))),
        None if ep.authorization_response_iss_parameter_supported => Err(ClientError::SignIn(
            "the authorization response has no iss although the server always sends one \
             (RFC 9207 §2.4): refused as a possible mix-up"
                .into(),
        )),
        _ => Ok(()),
    }
}

/// RFC 7009: revoke a token at the revocation endpoint (best effort).
pub async fn revoke(
    http: &reqwest::Client,
    ep: &Endpoints,
    token: &str,
    hint: &str,
    client_id: &str,
) -> Result<()> {
    let Some(url) = &ep.revocation_endpoint else {
        return Ok(());
    };
    let r = http
        .post(url)
        .form(&[
            ("token", token),
            ("token_type_hint", hint),
            ("client_id", client_id),
        ])
        .send()
        .await?;
    if !r.status().is_success() {
        return Err(ClientError::Protocol(format!(
            "revocation: HTTP {}",
            r.status()
        )));
    }
    Ok(())
}

/// A device authorization in progress (RFC 8628 §3.2): what to show the user, and what to
/// poll with. `Debug` leaves the device code out.
pub struct DeviceSignIn {
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub expires_in: u64,
    device_code: String,
    interval: u64,
}

impl std::fmt::Debug for DeviceSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceSignIn")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .finish_non_exhaustive()
    }
}

impl DeviceSignIn {
    /// `POST /device_authorization` as the public client `client_id` (RFC 8628 §3.1).
    pub async fn start(
        http: &reqwest::Client,
        ep: &Endpoints,
        client_id: &str,
        scope: &str,
    ) -> Result<Self> {
        let url = ep.device_authorization_endpoint.as_deref().ok_or_else(|| {
            ClientError::Protocol(
                "the authorization server does not offer the device flow (no \
                 device_authorization_endpoint)"
                    .into(),
            )
        })?;
        let mut form = vec![("client_id", client_id), ("resource", ep.resource.as_str())];
        if !scope.is_empty() {
            form.push(("scope", scope));
        }
        let resp = http.post(url).form(&form).send().await?;
        let status = resp.status();
        let body: Value = resp
            .json()
            .await
            .map_err(|e| ClientError::Protocol(format!("device authorization response: {e}")))?;
        if !status.is_success() {
            return Err(ClientError::SignIn(format!(
                "{}: {}",
                body["error"].as_str().unwrap_or("error"),
                body["error_description"].as_str().unwrap_or("refused")
            )));
        }
        let field = |name: &str| {
            body[name]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| ClientError::Protocol(format!("device authorization: no {name}")))
        };
        Ok(Self {
            device_code: field("device_code")?,
            user_code: field("user_code")?,
            verification_uri: field("verification_uri")?,
            verification_uri_complete: body["verification_uri_complete"]
                .as_str()
                .map(str::to_owned),
            expires_in: body["expires_in"].as_u64().unwrap_or(600),
            // §3.2: 5 seconds when the server says nothing.
            interval: body["interval"].as_u64().unwrap_or(5).max(1),
        })
    }

    /// Poll the token endpoint until the user decides or the code expires (RFC 8628 §3.4,
    /// §3.5): `authorization_pending` → wait the interval; `slow_down` → the interval grows by
    /// 5 s for good; anything else ends the sign-in.
    pub async fn finish(
        self,
        http: &reqwest::Client,
        ep: &Endpoints,
        client_id: &str,
        dpop: Option<&shared::dpop::DpopKey>,
    ) -> Result<Tokens> {
        let deadline =
            tokio::time::Instant::now() + std::time::Duration::from_secs(self.expires_in);
        let mut interval = self.interval;
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", client_id),
            ("device_code", self.device_code.as_str()),
        ];
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(interval)).await;
            if tokio::time::Instant::now() >= deadline {
                return Err(ClientError::SignIn(
                    "expired_token: the code expired before it was approved; start again".into(),
                ));
            }
            let method = SignInMethod::Device;
            match token_request_with(http, ep, &form, None, client_id, method, dpop).await {
                Ok(t) => return Ok(t),
                Err(ClientError::SignIn(msg)) if msg.starts_with("authorization_pending:") => {}
                Err(ClientError::SignIn(msg)) if msg.starts_with("slow_down:") => interval += 5,
                Err(e) => return Err(e),
            }
        }
    }
}
