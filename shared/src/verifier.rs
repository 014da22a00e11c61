//! Offline verification of `authz` access tokens (RFC 9068) for any Rust resource server.
//!
//! The JWKS is found through the issuer's RFC 8414 metadata, cached in memory and refreshed in
//! the background per its `Cache-Control: max-age` (so the request path makes no network call),
//! and re-fetched at once when a token names an unknown `kid` (a key the issuer has just
//! published) — at most once per `min_refetch_interval` (default 1 s), so a flood of bogus kids
//! cannot become a flood of fetches. Each fetch replaces the whole key set: a key the issuer
//! stopped publishing (withdrawn after a compromise, `authz keys revoke`) is dropped at the
//! next fetch — at most the JWKS `max-age` later (60 s for `authz`), sooner when a token or
//! event signed by the replacement key arrives — and its tokens are refused from then on.
//!
//! Checks (RFC 8725, RFC 9068 §4): size bound; `typ` is `at+jwt`; `alg` in the allow-list and
//! equal to the algorithm the key was published for (no HS/RS confusion, no `none`); `kid`
//! known; signature; `iss` exactly the configured issuer; `aud` is this resource; `exp`/`nbf`
//! with small leeway. `jku`, `x5u`, `jwk` and `x5c` headers are never used to find keys.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::claims::{ACCESS_TOKEN_TYP, AccessTokenClaims};
use crate::clock::{Clock, SystemClock};

/// Largest token accepted; ours are well under 2 KiB.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// The issuer, compared byte-for-byte with `iss` and the metadata's `issuer`.
    pub issuer: String,
    /// This resource server's canonical URI; must be the token's `aud`.
    pub audience: String,
    /// Algorithms accepted at all (RFC 8725 §3.1).
    pub algorithms: Vec<Algorithm>,
    /// Clock skew tolerated on `exp` and `nbf`.
    pub leeway: Duration,
    /// Minimum time between two fetches triggered by unknown `kid`s: short, so a token signed
    /// by a newly published key is accepted at once, yet bounded under a flood of bogus kids.
    pub min_refetch_interval: Duration,
    /// JWKS lifetime when the response has no usable `max-age`; also the upper bound.
    pub max_cache: Duration,
}

impl VerifierConfig {
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            algorithms: vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
            leeway: Duration::from_secs(30),
            min_refetch_interval: Duration::from_secs(1),
            max_cache: Duration::from_secs(300),
        }
    }
}

/// Why a token was refused. `Display` is safe to send to the client (no token content).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the token is not a well-formed JWT access token")]
    Malformed,
    #[error("the token is too large")]
    TooLarge,
    #[error("the token is not an access token (typ must be at+jwt)")]
    WrongType,
    #[error("the token's signing algorithm is not accepted")]
    AlgorithmNotAllowed,
    #[error("the token was signed by an unknown key")]
    UnknownKey,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    #[error("the token was issued for another resource")]
    WrongAudience,
    /// The keys could not be fetched (the client may retry later).
    #[error("signing keys are unavailable: {0}")]
    KeysUnavailable(String),
}

impl VerifyError {
    /// A short, fixed name for metrics and logs (`expired`, `bad_signature`, …).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::TooLarge => "too_large",
            Self::WrongType => "wrong_type",
            Self::AlgorithmNotAllowed => "algorithm_not_allowed",
            Self::UnknownKey => "unknown_key",
            Self::BadSignature => "bad_signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::KeysUnavailable(_) => "keys_unavailable",
        }
    }
}

struct Keys {
    by_kid: HashMap<String, (Arc<DecodingKey>, Algorithm)>,
    /// When the background refresher should fetch again.
    refresh_at: Instant,
}

struct FetchState {
    jwks_uri: Option<String>,
    last_attempt: Option<Instant>,
}

/// Verifies access tokens offline; share one per process (`Arc`).
pub struct Verifier {
    cfg: VerifierConfig,
    /// `exp` and `nbf` are checked against this (injected) clock.
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    keys: RwLock<Keys>,
    fetch: tokio::sync::Mutex<FetchState>,
    fetches: AtomicU64,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.cfg.issuer)
            .finish_non_exhaustive()
    }
}

#[derive(serde::Deserialize)]
struct Metadata {
    issuer: String,
    jwks_uri: String,
}

impl Verifier {
    /// A verifier with no keys yet, on the system clock; call [`Verifier::refresh`] (or let the
    /// first token do it) and [`Verifier::refresh_forever`].
    pub fn new(cfg: VerifierConfig, http: reqwest::Client) -> Arc<Self> {
        Self::with_clock(cfg, http, Arc::new(SystemClock))
    }

    /// A verifier whose `exp`/`nbf` checks read `clock`.
    pub fn with_clock(
        cfg: VerifierConfig,
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
    ) -> Arc<Self> {
        Arc::new(Self {
            cfg,
            clock,
            http,
            keys: RwLock::new(Keys {
                by_kid: HashMap::new(),
                refresh_at: Instant::now(),
            }),
            fetch: tokio::sync::Mutex::new(FetchState {
                jwks_uri: None,
                last_attempt: None,
            }),
            fetches: AtomicU64::new(0),
        })
    }

    /// How many JWKS fetches have been made (a metric; tests use it to prove rate limiting).
    pub fn jwks_fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Does the verifier hold any of the issuer's keys (readiness)?
    pub fn has_keys(&self) -> bool {
        self.keys.read().is_ok_and(|k| !k.by_kid.is_empty())
    }

    pub fn config(&self) -> &VerifierConfig {
        &self.cfg
    }

    /// Keep the JWKS fresh, per its cache lifetime, until the task running this is stopped (a
    /// server's background task, `shared::serve::Tasks`).
    pub async fn refresh_forever(self: Arc<Self>) {
        let mut backoff = Duration::from_secs(1);
        loop {
            let due = self
                .keys
                .read()
                .map(|k| k.refresh_at)
                .unwrap_or_else(|_| Instant::now());
            tokio::time::sleep_until(due.into()).await;
            match self.refresh(true).await {
                Ok(()) => backoff = Duration::from_secs(1),
                Err(e) => {
                    tracing::warn!(error = %e, "JWKS refresh failed; keeping the cached keys");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                }
            }
        }
    }

    /// Fetch metadata (once) and the JWKS. Unless `scheduled`, at most one fetch per
    /// `min_refetch_interval`; concurrent callers share one fetch.
    pub async fn refresh(&self, scheduled: bool) -> Result<(), VerifyError> {
        let mut st = self.fetch.lock().await;
        if !scheduled
            && st
                .last_attempt
                .is_some_and(|t| t.elapsed() < self.cfg.min_refetch_interval)
        {
            return Ok(());
        }
        st.last_attempt = Some(Instant::now());
        let unavailable = |e: String| VerifyError::KeysUnavailable(e);
        let jwks_uri = match &st.jwks_uri {
            Some(u) => u.clone(),
            None => {
                let url = format!("{}/.well-known/oauth-authorization-server", self.cfg.issuer);
                let m: Metadata = self
                    .http
                    .get(&url)
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .map_err(|e| unavailable(format!("metadata: {e}")))?
                    .json()
                    .await
                    .map_err(|e| unavailable(format!("metadata: {e}")))?;
                // RFC 8414 §3.3: the metadata must name exactly the issuer we trust.
                if m.issuer != self.cfg.issuer {
                    return Err(unavailable(format!(
                        "metadata issuer {:?} is not ours",
                        m.issuer
                    )));
                }
                st.jwks_uri = Some(m.jwks_uri.clone());
                m.jwks_uri
            }
        };
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let resp = self
            .http
            .get(&jwks_uri)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| unavailable(format!("jwks: {e}")))?;
        let max_age = resp
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_max_age)
            .unwrap_or(self.cfg.max_cache)
            .min(self.cfg.max_cache)
            .max(Duration::from_secs(5));
        let set: JwkSet = resp
            .json()
            .await
            .map_err(|e| unavailable(format!("jwks: {e}")))?;
        let by_kid = self.usable_keys(&set);
        if by_kid.is_empty() {
            return Err(unavailable("the JWKS has no usable signing key".into()));
        }
        if let Ok(mut k) = self.keys.write() {
            *k = Keys {
                by_kid,
                refresh_at: Instant::now() + max_age,
            };
        }
        Ok(())
    }

    /// Use `set` as the published keys for `valid_for` (a resource server configured with a
    /// static JWKS; the fuzz target). Keys are filtered exactly as fetched ones are.
    pub fn install_keys(&self, set: &JwkSet, valid_for: Duration) {
        let by_kid = self.usable_keys(set);
        if let Ok(mut k) = self.keys.write() {
            *k = Keys {
                by_kid,
                refresh_at: Instant::now() + valid_for,
            };
        }
    }

    /// Keys with a `kid` whose algorithm is allowed; each key bound to its one algorithm.
    fn usable_keys(&self, set: &JwkSet) -> HashMap<String, (Arc<DecodingKey>, Algorithm)> {
        set.keys
            .iter()
            .filter_map(|jwk| {
                let kid = jwk.common.key_id.clone()?;
                let alg = key_algorithm(jwk)?;
                if !self.cfg.algorithms.contains(&alg) {
                    return None;
                }
                let key = DecodingKey::from_jwk(jwk).ok()?;
                Some((kid, (Arc::new(key), alg)))
            })
            .collect()
    }

    fn key(&self, kid: &str) -> Option<(Arc<DecodingKey>, Algorithm)> {
        self.keys.read().ok()?.by_kid.get(kid).cloned()
    }

    /// The key and validation for a JWT of type `typ` (or its `application/` media type form)
    /// from our issuer for `audience`: allowed algorithm, known `kid` (refetching the JWKS
    /// once per interval for an unknown one, a rotation), the key's own algorithm.
    async fn prepare(
        &self,
        token: &str,
        typ: &str,
        audience: &str,
    ) -> Result<(Arc<DecodingKey>, Validation), VerifyError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(VerifyError::TooLarge);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
        let got = header.typ.as_deref().unwrap_or("").to_ascii_lowercase();
        if got != typ && got.strip_prefix("application/") != Some(typ) {
            return Err(VerifyError::WrongType);
        }
        if !self.cfg.algorithms.contains(&header.alg) {
            return Err(VerifyError::AlgorithmNotAllowed);
        }
        let kid = header.kid.as_deref().ok_or(VerifyError::UnknownKey)?;
        let (key, alg) = match self.key(kid) {
            Some(k) => k,
            None => {
                // Maybe a rotation: fetch again, at most once per interval.
                self.refresh(false).await?;
                self.key(kid).ok_or(VerifyError::UnknownKey)?
            }
        };
        if header.alg != alg {
            return Err(VerifyError::AlgorithmNotAllowed);
        }
        let mut v = Validation::new(alg);
        v.set_issuer(&[&self.cfg.issuer]);
        v.set_audience(&[audience]);
        // Time is checked by the caller, against the injected clock.
        v.validate_exp = false;
        v.validate_nbf = false;
        Ok((key, v))
    }

    /// Verify a bearer token and return its claims.
    pub async fn verify(&self, token: &str) -> Result<AccessTokenClaims, VerifyError> {
        // RFC 9068 §4: typ must be at+jwt (the media type form is equivalent).
        let (key, mut v) = self
            .prepare(token, ACCESS_TOKEN_TYP, &self.cfg.audience)
            .await?;
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let timed = decode::<Timed>(token, &key, &v)?;
        let (now, leeway) = (self.clock.now(), self.cfg.leeway.as_secs() as i64);
        if timed.claims.exp + leeway <= now {
            return Err(VerifyError::Expired);
        }
        if timed.nbf.is_some_and(|nbf| nbf - leeway > now) {
            return Err(VerifyError::NotYetValid);
        }
        Ok(timed.claims)
    }

    /// Verify a Security Event Token (RFC 8417) from our issuer for `audience` (a Shared
    /// Signals receiver's stream audience): `typ: secevent+jwt` (§2.3), signature by a
    /// published key, `iss`, `aud`, and a `jti`, an `iat` not in the future and an `events`
    /// object. SETs have no `exp` (§2.2). Returns the claims.
    pub async fn verify_set(
        &self,
        token: &str,
        audience: &str,
    ) -> Result<serde_json::Value, VerifyError> {
        let (key, mut v) = self.prepare(token, "secevent+jwt", audience).await?;
        v.set_required_spec_claims(&["iss", "aud"]);
        let claims: serde_json::Value = decode(token, &key, &v)?;
        let leeway = self.cfg.leeway.as_secs() as i64;
        let iat = claims["iat"].as_i64().ok_or(VerifyError::Malformed)?;
        if iat - leeway > self.clock.now() {
            return Err(VerifyError::NotYetValid);
        }
        if !claims["jti"].is_string() || !claims["events"].is_object() {
            return Err(VerifyError::Malformed);
        }
        Ok(claims)
    }
}

/// Decode and check signature, issuer and audience, naming the failure.
fn decode<T: serde::de::DeserializeOwned>(
    token: &str,
    key: &DecodingKey,
    v: &Validation,
) -> Result<T, VerifyError> {
    jsonwebtoken::decode::<T>(token, key, v)
        .map(|d| d.claims)
        .map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::InvalidSignature => VerifyError::BadSignature,
                K::InvalidIssuer => VerifyError::WrongIssuer,
                K::InvalidAudience => VerifyError::WrongAudience,
                K::InvalidAlgorithm => VerifyError::AlgorithmNotAllowed,
                _ => VerifyError::Malformed,
            }
        })
}

/// The claims with the optional `nbf` (RFC 7519 §4.1.5) beside them.
#[derive(serde::Deserialize)]
struct Timed {
    #[serde(flatten)]
    claims: AccessTokenClaims,
    #[serde(default)]
    nbf: Option<i64>,
}

/// The algorithm a JWK is for: its `alg`, else implied by its key type.
fn key_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    use jsonwebtoken::jwk::{AlgorithmParameters as P, EllipticCurve as C};
    match jwk.common.key_algorithm {
        Some(KeyAlgorithm::RS256) => Some(Algorithm::RS256),
        Some(KeyAlgorithm::ES256) => Some(Algorithm::ES256),
        Some(KeyAlgorithm::EdDSA) => Some(Algorithm::EdDSA),
        Some(_) => None,
        None => match &jwk.algorithm {
            P::RSA(_) => Some(Algorithm::RS256),
            P::EllipticCurve(p) if p.curve == C::P256 => Some(Algorithm::ES256),
            P::OctetKeyPair(p) if p.curve == C::Ed25519 => Some(Algorithm::EdDSA),
            _ => None,
        },
    }
}

fn parse_max_age(cache_control: &str) -> Option<Duration> {
    cache_control.split(',').find_map(|d| {
        let (k, v) = d.trim().split_once('=')?;
        (k.eq_ignore_ascii_case("max-age"))
            .then(|| v.trim().parse().ok().map(Duration::from_secs))?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_parsing() {
        assert_eq!(
            parse_max_age("public, max-age=60"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_max_age("no-store"), None);
        assert_eq!(parse_max_age("max-age=abc"), None);
    }
}
