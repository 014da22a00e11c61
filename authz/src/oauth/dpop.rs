//! DPoP at the authorization server (RFC 9449 §5, §8): the configuration (`AUTHZ_DPOP_*`), the
//! proof check of `POST /token` and of `/userinfo`, and the stateless server nonces.
//!
//! * A token request with a valid `DPoP` header gets access tokens bound to the proof's key
//!   (`cnf.jkt`, §6) and `token_type: DPoP` (§5); a public client's refresh tokens are bound to
//!   the key too and refreshing needs a proof with it (§5, §5.0: confidential clients'
//!   refresh tokens are already bound to their client authentication).
//! * A client registered with `dpop_bound_access_tokens` (RFC 9449 §5.2) must send a proof.
//! * With `AUTHZ_DPOP_NONCE`, every proof must carry a nonce this server handed out (§8): a
//!   MAC of the time window under a key derived from the master key, so every replica accepts
//!   it without shared state; the refusal is `use_dpop_nonce` with a `DPoP-Nonce` header.
//! * With DPoP off (`AUTHZ_DPOP=false`) the header is ignored (§5: a server without DPoP
//!   issues Bearer tokens) and metadata does not list it.

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shared::config::{ConfigError, Env};
use shared::dpop::{DpopError, DpopVerifier, Jkt, NonceCheck, NonceSource, ProofRequest};

use crate::crypto::MasterKey;

/// `[dpop]` / `AUTHZ_DPOP_*`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DpopConfig {
    /// `AUTHZ_DPOP` (default true): accept DPoP proofs and issue bound tokens.
    pub enabled: bool,
    /// `AUTHZ_DPOP_NONCE` (default false): proofs at `/token` must carry a server nonce.
    pub nonce: bool,
    /// `AUTHZ_DPOP_NONCE_SECS` (default 300): a nonce's window; the previous one is accepted
    /// too, so a nonce lives between one and two windows.
    pub nonce_secs: i64,
    /// `AUTHZ_DPOP_IAT_WINDOW_SECS` (default 60): how far a proof's `iat` may be from now.
    pub iat_window_secs: i64,
    /// `AUTHZ_DPOP_REPLAY_CACHE` (default 100000): the most `jti`s remembered.
    pub replay_cache: usize,
}

impl Default for DpopConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            nonce: false,
            nonce_secs: 300,
            iat_window_secs: 60,
            replay_cache: 100_000,
        }
    }
}

impl DpopConfig {
    pub fn apply_env(
        &mut self,
        env: &Env<impl Fn(&str) -> Option<String>>,
    ) -> Result<(), ConfigError> {
        env.set("AUTHZ_DPOP", &mut self.enabled)?;
        env.set("AUTHZ_DPOP_NONCE", &mut self.nonce)?;
        env.set("AUTHZ_DPOP_NONCE_SECS", &mut self.nonce_secs)?;
        env.set("AUTHZ_DPOP_IAT_WINDOW_SECS", &mut self.iat_window_secs)?;
        env.set("AUTHZ_DPOP_REPLAY_CACHE", &mut self.replay_cache)?;
        Ok(())
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(5..=600).contains(&self.iat_window_secs) {
            return Err(ConfigError(
                "dpop iat_window_secs must be within 5..=600".into(),
            ));
        }
        if !(30..=86_400).contains(&self.nonce_secs) {
            return Err(ConfigError(
                "dpop nonce_secs must be within 30..=86400".into(),
            ));
        }
        if self.replay_cache < 1_000 {
            return Err(ConfigError(
                "dpop replay_cache must be at least 1000".into(),
            ));
        }
        Ok(())
    }
}

/// The server's DPoP service: verifier (with its replay cache) and nonce source.
#[derive(Debug)]
pub struct Dpop {
    pub enabled: bool,
    verifier: DpopVerifier,
    /// `Some` when nonces are required.
    nonces: Option<NonceSource>,
}

/// A refused proof, answered per RFC 9449 §5 (token endpoint) or §7.1 (resources).
#[derive(Debug)]
pub struct Refused {
    pub error: DpopError,
    /// The nonce to send back (`DPoP-Nonce`), when nonces are on.
    pub nonce: Option<String>,
    /// A protected resource (userinfo) answers 401 with a `DPoP` challenge; the token
    /// endpoint answers 400 (RFC 9449 §5, §7.1).
    pub resource: bool,
}

impl Dpop {
    pub fn new(config: &DpopConfig, master: &MasterKey) -> Self {
        let nonces = config
            .nonce
            .then(|| NonceSource::new(master.mac("dpop-nonce-v1", b"authz"), config.nonce_secs));
        Self {
            enabled: config.enabled,
            verifier: DpopVerifier::new(config.iat_window_secs, config.replay_cache),
            nonces,
        }
    }

    /// The nonce to hand out now (`DPoP-Nonce` on every token response when nonces are on,
    /// RFC 9449 §8.2).
    pub fn current_nonce(&self, now: i64) -> Option<String> {
        self.nonces.as_ref().map(|n| n.current(now))
    }

    /// Check the `DPoP` header of a request to `uri` (this server's public URL of the
    /// endpoint) with `method`: `Ok(None)` without a header (or with DPoP off), the key's
    /// thumbprint with a valid proof. `access_token`: the token a resource request presents.
    pub fn check(
        &self,
        headers: &HeaderMap,
        method: &str,
        uri: &str,
        access_token: Option<&str>,
        now: i64,
    ) -> Result<Option<Jkt>, Refused> {
        if !self.enabled {
            return Ok(None);
        }
        let refuse = |error| Refused {
            error,
            nonce: self.current_nonce(now).filter(|_| access_token.is_none()),
            resource: access_token.is_some(),
        };
        let mut values = headers.get_all(shared::dpop::DPOP_HEADER).iter();
        let Some(value) = values.next() else {
            return Ok(None);
        };
        // RFC 9449 §4.3 step 1: exactly one DPoP header.
        if values.next().is_some() {
            return Err(refuse(DpopError::Invalid(
                "exactly one DPoP header is allowed".into(),
            )));
        }
        let proof = value
            .to_str()
            .map_err(|_| refuse(DpopError::Invalid("the DPoP header is not a JWT".into())))?;
        let req = ProofRequest {
            method,
            uri,
            access_token,
        };
        // Nonces are asked for at the token endpoint only (RFC 9449 §8); a resource request
        // (one with an access token) is checked without.
        let nonce = self
            .nonces
            .as_ref()
            .filter(|_| access_token.is_none())
            .map(|n| n as &dyn NonceCheck);
        self.verifier
            .verify(proof, &req, nonce, now)
            .map(|p| Some(p.jkt))
            .map_err(refuse)
    }
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let description = shared::error_description(&self.error.to_string());
        let code = match self.error {
            DpopError::Invalid(_) => shared::ErrorCode::InvalidDpopProof,
            DpopError::UseNonce => shared::ErrorCode::UseDpopNonce,
        };
        let status = if self.resource {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::BAD_REQUEST
        };
        let body = shared::ErrorResponse::new(code, &description);
        let mut r = (status, axum::Json(body)).into_response();
        let h = r.headers_mut();
        h.insert(
            axum::http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        );
        if let Some(n) = self.nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
            h.insert(shared::dpop::NONCE_HEADER, n);
        }
        if self.resource {
            // RFC 9449 §7.1.
            let v = format!(
                "DPoP algs=\"{}\", error=\"{code}\", error_description=\"{description}\"",
                shared::dpop::CHALLENGE_ALGS
            );
            if let Ok(v) = HeaderValue::from_str(&v) {
                h.insert(axum::http::header::WWW_AUTHENTICATE, v);
            }
        }
        r
    }
}
