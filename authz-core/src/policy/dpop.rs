//! DPoP at the authorization server (RFC 9449 §5, §8): the configuration (`AUTHZ_DPOP_*`), the
//! proof check of `POST /token` and `POST /par`, and the stateless server nonces. Resource
//! requests (UserInfo, the management API) go through `protocol::live::presented`, which applies
//! `shared::dpop::binding` with this verifier.
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
//! * Spent proofs (`jti`, §11.1) are kept where the rate limits are: in Redis with
//!   `AUTHZ_REDIS_URL` (so a proof used at one replica is refused at every other), else in this
//!   process, at most `AUTHZ_DPOP_REPLAY_CACHE` live ones; a full cache refuses new proofs
//!   (`use_dpop_nonce` with nonces on, else 503 with `Retry-After`) and never forgets a live one.
//!
//! A request's proof arrives typed ([`DpopProof`]: the `DPoP` header values as the web edge
//! found them, with the request's method and URI); the rules are applied here.

use http::HeaderValue;
use shared::dpop::{
    DpopError, DpopVerifier, Jkt, NonceCheck, NonceSource, ProofRequest, ReplayStore,
};
use shared::limits::Counters;

pub use crate::config::dpop::DpopConfig;
use crate::crypto::MasterKey;

/// A request's DPoP proof as presented (RFC 9449 §4.1): every `DPoP` header value (at least
/// one; exactly one is allowed, §4.3 step 1, which the checks enforce), for the request's
/// `method` at `uri`, this server's public URL of the endpoint (the issuer and the path as
/// routed, never a `Host` header).
#[derive(Debug, Clone)]
pub struct DpopProof {
    pub values: Vec<HeaderValue>,
    pub method: String,
    pub uri: String,
}

impl DpopProof {
    /// The header values as bytes (what `shared::dpop::binding` reads).
    pub fn proofs(&self) -> impl Iterator<Item = &[u8]> {
        self.values.iter().map(HeaderValue::as_bytes)
    }
}

/// The server's DPoP service: the verifier, with its replay store (Redis when the rate limits
/// are there) and, when on, its nonces.
#[derive(Debug)]
pub struct Dpop {
    pub enabled: bool,
    verifier: DpopVerifier,
}

/// A refused proof at the token or PAR endpoint: 400 (RFC 9449 §5), or 503 with `Retry-After`
/// when the replay store is full and nonces are off.
#[derive(Debug)]
pub struct Refused {
    pub error: DpopError,
    /// The nonce to send back (`DPoP-Nonce`), when nonces are on.
    pub nonce: Option<String>,
}

impl Dpop {
    /// `counters`: where the rate limits are; spent proofs are kept there too (Redis: shared
    /// by every replica).
    pub fn new(config: &DpopConfig, master: &MasterKey, counters: &Counters) -> Self {
        let mut verifier = DpopVerifier::new(config.iat_window_secs, config.replay_cache)
            .with_replay(ReplayStore::shared(counters, config.replay_cache));
        if config.nonce {
            verifier = verifier.with_nonces(NonceSource::new(
                master.mac("dpop-nonce-v1", b"authz"),
                config.nonce_secs,
            ));
        }
        Self {
            enabled: config.enabled,
            verifier,
        }
    }

    /// The nonce to hand out now (`DPoP-Nonce` on every token response when nonces are on,
    /// RFC 9449 §8.2).
    pub fn current_nonce(&self, now: i64) -> Option<String> {
        self.verifier.current_nonce(now)
    }

    /// The verifier, for the resource-request rule (`protocol::live::presented`).
    pub fn verifier(&self) -> &DpopVerifier {
        &self.verifier
    }

    /// Check and spend the DPoP proof of a request to the token or PAR endpoint: `Ok(None)`
    /// without one (or with DPoP off), the key's thumbprint with a valid proof. Nonces, when
    /// on, are asked for here (RFC 9449 §8).
    pub async fn check(&self, proof: Option<&DpopProof>, now: i64) -> Result<Option<Jkt>, Refused> {
        if !self.enabled {
            return Ok(None);
        }
        let refuse = |error| Refused {
            error,
            nonce: self.current_nonce(now),
        };
        let Some(presented) = proof else {
            return Ok(None);
        };
        let mut values = presented.values.iter();
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
            method: &presented.method,
            uri: &presented.uri,
            access_token: None,
        };
        let nonce = self.verifier.nonces().map(|n| n as &dyn NonceCheck);
        self.verifier
            .verify(proof, &req, nonce, now)
            .await
            .map(|p| Some(p.jkt))
            .map_err(refuse)
    }
}
