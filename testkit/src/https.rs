//! `HttpsHost`: a small https server on 127.0.0.1 for tests that need a remote party the
//! server must fetch from over TLS (Client ID Metadata Documents). Its certificate is made
//! for the test (SANs `127.0.0.1` and `localhost`) and written as PEM, to be trusted through
//! configuration (`AUTHZ_CIMD_EXTRA_ROOTS`). Each path answers what the test put there
//! (status, headers, body, an optional delay), and every request is counted per path.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// What one path answers.
#[derive(Debug, Clone)]
pub struct Route {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Wait this long before answering (a slow server).
    pub delay: Duration,
}

impl Route {
    /// 200 `application/json` with `body`.
    pub fn json(body: &serde_json::Value) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

#[derive(Default)]
struct Shared {
    routes: HashMap<String, Route>,
    hits: HashMap<String, usize>,
}

/// The running host (stops when dropped).
pub struct HttpsHost {
    pub port: u16,
    /// The PEM file of its certificate (the trust anchor to configure).
    pub ca_pem: PathBuf,
    shared: Arc<Mutex<Shared>>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for HttpsHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpsHost")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Drop for HttpsHost {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HttpsHost {
    pub async fn start() -> Self {
        let cert = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca_pem = dir.path().join("ca.pem");
        std::fs::write(&ca_pem, cert.cert.pem()).unwrap();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(
            rustls::pki_types::PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der()),
        );
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let state = Arc::clone(&shared);
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let state = Arc::clone(&state);
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65_536 {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&head).to_string();
                    let path = text.split(' ').nth(1).unwrap_or("/").to_owned();
                    let route = {
                        let mut s = state.lock().unwrap();
                        *s.hits.entry(path.clone()).or_default() += 1;
                        s.routes.get(&path).cloned()
                    };
                    let route = route.unwrap_or(Route {
                        status: 404,
                        headers: vec![],
                        body: b"not found".to_vec(),
                        delay: Duration::ZERO,
                    });
                    tokio::time::sleep(route.delay).await;
                    let mut resp = format!("HTTP/1.1 {} X\r\nconnection: close\r\n", route.status);
                    for (k, v) in &route.headers {
                        resp.push_str(&format!("{k}: {v}\r\n"));
                    }
                    resp.push_str(&format!("content-length: {}\r\n\r\n", route.body.len()));
                    let _ = tls.write_all(resp.as_bytes()).await;
                    let _ = tls.write_all(&route.body).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        Self {
            port,
            ca_pem,
            shared,
            task,
            _dir: dir,
        }
    }

    /// `https://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// `127.0.0.1:<port>`, the allow-list entry for this host.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn put(&self, path: &str, route: Route) {
        self.shared
            .lock()
            .unwrap()
            .routes
            .insert(path.to_owned(), route);
    }

    /// How many requests `path` has had.
    pub fn hits(&self, path: &str) -> usize {
        self.shared
            .lock()
            .unwrap()
            .hits
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

/// A fresh ES256 (P-256) key pair for signing client assertions: its PKCS#8 DER (for
/// `jsonwebtoken::EncodingKey::from_ec_der`) and its public JWK with `kid`.
pub fn es256_key(kid: &str) -> (Vec<u8>, serde_json::Value) {
    use base64::Engine;
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let point = key.public_key_raw();
    assert_eq!(point.len(), 65, "an uncompressed P-256 point");
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let jwk = serde_json::json!({
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
        "x": b64.encode(&point[1..33]), "y": b64.encode(&point[33..65]),
    });
    (key.serialize_der(), jwk)
}

/// A self-signed certificate for `127.0.0.1` and `localhost`, written as `<name>.pem` (which
/// is also its own trust anchor) and `<name>.key` (PKCS#8) in `dir`: the two paths.
pub fn self_signed_files(
    dir: &std::path::Path,
    name: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let (pem, key) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&pem, cert.cert.pem()).unwrap();
    std::fs::write(&key, cert.key_pair.serialize_pem()).unwrap();
    (pem, key)
}
