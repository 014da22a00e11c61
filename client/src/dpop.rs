//! DPoP for the client (RFC 9449): an ES256 key per sign-in session (kept with the remembered
//! tokens, in the same 0600 file), proofs on token requests (with one retry on
//! `use_dpop_nonce`, §8) and on every MCP request (`Authorization: DPoP`, `ath`, §7), through a
//! wrapper around rmcp's reqwest client — which also follows a resource server's nonce
//! challenge (§9): on `use_dpop_nonce` it learns the nonce and retries once, then keeps
//! sending it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::stream::BoxStream;
use reqwest::header::{HeaderName, HeaderValue};
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
    StreamableHttpResponseLimits,
};
pub use shared::dpop::DpopKey;

use crate::error::{ClientError, Result};

static BY_DEFAULT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The command line's `--dpop`: every client this process connects uses DPoP.
pub fn set_default(on: bool) {
    BY_DEFAULT.store(on, std::sync::atomic::Ordering::Relaxed);
}

/// Is DPoP on for new clients of this process?
pub fn by_default() -> bool {
    BY_DEFAULT.load(std::sync::atomic::Ordering::Relaxed)
}

/// The private key as kept with the tokens (base64url PKCS#8); `Debug` does not show it.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct StoredKey(String);

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoredKey(..)")
    }
}

/// A new proof key.
pub fn generate() -> Result<Arc<DpopKey>> {
    DpopKey::generate()
        .map(Arc::new)
        .map_err(|_| ClientError::Protocol("could not generate a DPoP key".into()))
}

/// The key as stored with the tokens (base64url PKCS#8).
pub fn export(key: &DpopKey) -> Option<StoredKey> {
    key.to_pkcs8()
        .ok()
        .map(|d| StoredKey(URL_SAFE_NO_PAD.encode(d)))
}

/// A key stored by [`export`].
pub fn import(stored: &StoredKey) -> Option<Arc<DpopKey>> {
    let der = URL_SAFE_NO_PAD.decode(&stored.0).ok()?;
    DpopKey::from_pkcs8(&der).ok().map(Arc::new)
}

/// rmcp's reqwest client, with `Authorization: DPoP <token>` and a fresh proof on every
/// request (the transport's own bearer header is not used).
#[derive(Clone)]
pub struct DpopHttp {
    pub inner: reqwest::Client,
    pub key: Arc<DpopKey>,
    pub token: Arc<str>,
    /// The resource server's nonce (RFC 9449 §9), once it asked for one.
    nonce: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for DpopHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopHttp")
            .field("jkt", &self.key.jkt().to_b64())
            .finish_non_exhaustive()
    }
}

impl DpopHttp {
    pub fn new(inner: reqwest::Client, key: Arc<DpopKey>, token: Arc<str>) -> Self {
        Self {
            inner,
            key,
            token,
            nonce: Arc::default(),
        }
    }

    fn nonce(&self) -> Option<String> {
        self.nonce.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Send with a proof (`call` gets the headers); when the server answers `use_dpop_nonce`
    /// (RFC 9449 §9), learn its nonce and send once more.
    async fn sending<T, F, Fut>(
        &self,
        method: &str,
        uri: &str,
        custom: HashMap<HeaderName, HeaderValue>,
        call: F,
    ) -> HttpResult<T>
    where
        F: Fn(HashMap<HeaderName, HeaderValue>) -> Fut,
        Fut: Future<Output = HttpResult<T>>,
    {
        let first = call(self.headers(method, uri, custom.clone())).await;
        match &first {
            Err(StreamableHttpError::AuthRequired(e))
                if e.www_authenticate_header.contains("use_dpop_nonce")
                    && self.learn_nonce(uri).await =>
            {
                call(self.headers(method, uri, custom)).await
            }
            _ => first,
        }
    }

    /// The nonce a `use_dpop_nonce` refusal carried in `DPoP-Nonce`, which rmcp's transport
    /// does not pass on: asked for again with a `GET` whose proof has no nonce, which the
    /// server refuses, with its nonce, before doing anything. True when one was learnt.
    async fn learn_nonce(&self, uri: &str) -> bool {
        let now = shared::clock::Clock::now(&shared::clock::SystemClock);
        let proof = self.key.proof("GET", uri, now, Some(&self.token), None);
        let answer = self
            .inner
            .get(uri)
            .header(
                reqwest::header::AUTHORIZATION.as_str(),
                format!("DPoP {}", self.token),
            )
            .header("dpop", proof)
            .header(
                reqwest::header::ACCEPT.as_str(),
                "application/json, text/event-stream",
            )
            .send()
            .await;
        let learnt = answer.ok().and_then(|r| {
            r.headers()
                .get(shared::dpop::NONCE_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        });
        let found = learnt.is_some();
        if found {
            *self.nonce.lock().unwrap_or_else(|p| p.into_inner()) = learnt;
        }
        found
    }

    fn headers(
        &self,
        method: &str,
        uri: &str,
        mut custom: HashMap<HeaderName, HeaderValue>,
    ) -> HashMap<HeaderName, HeaderValue> {
        let proof = self.key.proof(
            method,
            uri,
            shared::clock::Clock::now(&shared::clock::SystemClock),
            Some(&self.token),
            self.nonce().as_deref(),
        );
        if let Ok(v) = HeaderValue::from_str(&format!("DPoP {}", self.token)) {
            custom.insert(reqwest::header::AUTHORIZATION, v);
        }
        if let Ok(v) = HeaderValue::from_str(&proof) {
            custom.insert(HeaderName::from_static("dpop"), v);
        }
        custom
    }
}

type SseStream = BoxStream<'static, std::result::Result<sse_stream::Sse, SseError>>;
type HttpResult<T> = std::result::Result<T, StreamableHttpError<reqwest::Error>>;

impl StreamableHttpClient for DpopHttp {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> HttpResult<StreamableHttpPostResponse> {
        self.sending("POST", &uri, custom_headers, |headers| {
            self.inner.post_message(
                uri.clone(),
                message.clone(),
                session_id.clone(),
                None,
                headers,
            )
        })
        .await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> HttpResult<StreamableHttpPostResponse> {
        self.sending("POST", &uri, custom_headers, |headers| {
            self.inner.post_message_with_response_limits(
                uri.clone(),
                message.clone(),
                session_id.clone(),
                None,
                headers,
                limits,
            )
        })
        .await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> HttpResult<()> {
        self.sending("DELETE", &uri, custom_headers, |headers| {
            self.inner
                .delete_session(uri.clone(), session_id.clone(), None, headers)
        })
        .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> HttpResult<SseStream> {
        self.sending("GET", &uri, custom_headers, |headers| {
            self.inner.get_stream(
                uri.clone(),
                session_id.clone(),
                last_event_id.clone(),
                None,
                headers,
            )
        })
        .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        _auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> HttpResult<SseStream> {
        self.sending("GET", &uri, custom_headers, |headers| {
            self.inner.get_stream_with_max_sse_event_size(
                uri.clone(),
                session_id.clone(),
                last_event_id.clone(),
                None,
                headers,
                max_sse_event_size,
            )
        })
        .await
    }
}
