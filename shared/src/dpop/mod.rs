//! DPoP (RFC 9449): the one proof verifier both servers use, the stateless server nonces of
//! `authz`, and a proof signer for clients (the command-line client, tests, benchmarks).
//!
//! A proof is a JWT the client signs with a key whose public half travels in the JOSE header
//! (`jwk`). Verification follows RFC 9449 §4.3, step by step (numbers in the comments):
//! the signature is checked with aws-lc-rs directly from the JWK's components, so only the
//! three asymmetric algorithms listed in [`SUPPORTED_ALGS`] can ever verify (never `none`, never
//! an HMAC with the public key as the secret). The key's RFC 7638 SHA-256 thumbprint is the
//! [`Jkt`] an access token is bound to (`cnf.jkt`, RFC 9449 §6.1).
//!
//! Replay (§11.1): checking a proof ([`DpopVerifier::check`]) and spending its `jti`
//! ([`DpopVerifier::spend`]) are two steps, so a server spends it only once everything else
//! let the request through (its rate limits too). A spent `jti` is remembered until the proof
//! could no longer be accepted (`iat` + window), keyed by the SHA-256 of key thumbprint and
//! `jti`, in this process or, with Redis configured, shared by every replica ([`replay`]). A
//! live entry is never dropped to make room: when the cache is full, the proof is refused
//! (`use_dpop_nonce` where this server issues nonces, else 503 with `Retry-After`; §8, §9).
//! The resource-request rule (scheme × `cnf.jkt` × proof, §7) is [`binding`].
//! Proofs and tokens are never logged or put into error descriptions.

pub mod binding;
pub mod replay;

pub use binding::{Authorization, Binding, Challenge, Presented, Refusal, Scheme};
pub use replay::{ReplayCache, ReplayStore};

use aws_lc_rs::{digest, rand, signature};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Map, Value};

use crate::crypto::ct_eq;

/// The JOSE `typ` of a proof (RFC 9449 §4.2).
pub const PROOF_TYP: &str = "dpop+jwt";

/// The proof algorithms accepted (`dpop_signing_alg_values_supported`, RFC 9449 §5.1 / RFC
/// 9728 §2), in the order advertised.
pub const SUPPORTED_ALGS: &[&str] = &["ES256", "RS256", "EdDSA"];

/// The `algs` of a `WWW-Authenticate: DPoP` challenge (RFC 9449 §7.1).
pub const CHALLENGE_ALGS: &str = "ES256 RS256 EdDSA";

/// The request header carrying the proof, and the response header carrying a nonce (§8.1).
pub const DPOP_HEADER: &str = "dpop";
pub const NONCE_HEADER: &str = "dpop-nonce";

/// Longest proof accepted (a 4096-bit RSA key in the header fits comfortably).
const MAX_PROOF_BYTES: usize = 8 * 1024;
/// Longest `jti` accepted (RFC 9449 §4.2 suggests 96 bits of randomness; be generous).
const MAX_JTI: usize = 256;

/// The RFC 7638 SHA-256 thumbprint of a proof key: the `cnf.jkt` of a bound token (shown as
/// base64url by `Display`). `Copy`: it travels in request contexts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Jkt([u8; 32]);

impl Jkt {
    /// From the base64url form (a `cnf.jkt` claim, a stored binding); `None` if malformed.
    pub fn from_b64(value: &str) -> Option<Self> {
        let bytes = B64.decode(value).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }
    /// The base64url form (RFC 9449 §6.1).
    pub fn to_b64(&self) -> String {
        B64.encode(self.0)
    }
    /// Is this the thumbprint written `other` (base64url)? Constant time.
    pub fn matches(&self, other: &str) -> bool {
        Self::from_b64(other).is_some_and(|o| ct_eq(&o.0, &self.0))
    }
    /// Is this the same key as `other`? Constant time.
    pub fn same(&self, other: &Jkt) -> bool {
        ct_eq(&self.0, &other.0)
    }
    fn of_canonical(canonical: &str) -> Self {
        let mut out = [0u8; 32];
        out.copy_from_slice(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref());
        Self(out)
    }
}

impl std::fmt::Display for Jkt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_b64())
    }
}

/// Why a proof was refused. [`DpopError::code`] is the RFC 9449 error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpopError {
    /// RFC 9449 §4.3 / §7.1: `invalid_dpop_proof`; the text says which check failed (never the
    /// proof itself).
    #[error("{0}")]
    Invalid(String),
    /// RFC 9449 §8 / §9: a nonce is required (or the one sent is not current):
    /// `use_dpop_nonce`, with a fresh `DPoP-Nonce` header.
    #[error("a current DPoP nonce is required (see the DPoP-Nonce header)")]
    UseNonce,
    /// The replay cache is full of live entries and this server issues no nonces: 503
    /// `temporarily_unavailable` with `Retry-After` (RFC 9110 §10.2.3). A live entry is never
    /// dropped to make room (that would let a captured proof replay).
    #[error("too many DPoP proofs to remember right now; retry in {retry_after} s")]
    Unavailable { retry_after: u64 },
}

impl DpopError {
    fn invalid(text: impl Into<String>) -> Self {
        Self::Invalid(text.into())
    }
    /// The error code (RFC 9449 §12.2).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid_dpop_proof",
            Self::UseNonce => "use_dpop_nonce",
            Self::Unavailable { .. } => "temporarily_unavailable",
        }
    }
    /// The error code as [`crate::ErrorCode`].
    pub fn error_code(&self) -> crate::ErrorCode {
        match self {
            Self::Invalid(_) => crate::ErrorCode::InvalidDpopProof,
            Self::UseNonce => crate::ErrorCode::UseDpopNonce,
            Self::Unavailable { .. } => crate::ErrorCode::TemporarilyUnavailable,
        }
    }
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "dpop_invalid",
            Self::UseNonce => "dpop_nonce",
            Self::Unavailable { .. } => "dpop_replay_full",
        }
    }
}

/// What the proof must match: the request it came with (RFC 9449 §4.3 steps 8–12).
#[derive(Debug, Clone, Copy)]
pub struct ProofRequest<'a> {
    /// The HTTP method, e.g. `POST`.
    pub method: &'a str,
    /// The target URI as this server is known to its clients (the configured public URL, never
    /// a Host header a proxy rewrote); compared after normalisation (§4.3 step 9).
    pub uri: &'a str,
    /// The access token presented with the proof (resource requests, §7): `ath` must be its
    /// hash. `None` at the token endpoint, where `ath` is not checked.
    pub access_token: Option<&'a str>,
}

/// The nonce rule for one verification (RFC 9449 §8, §9); `Sync`, so a verification can be
/// awaited on any thread.
pub trait NonceCheck: Sync {
    /// Is `nonce` one this server issued and still accepts?
    fn accepts(&self, nonce: &str, now: i64) -> bool;
}

/// A proof that passed every check but the replay check: spend it ([`DpopVerifier::spend`])
/// before acting on the request.
#[derive(Debug, Clone)]
pub struct VerifiedProof {
    /// The key's thumbprint (RFC 7638, SHA-256).
    pub jkt: Jkt,
    pub iat: i64,
    /// What the replay cache remembers of it, and until when.
    replay: replay::Seen,
}

/// The verifier: configuration, this server's nonces (when on) and its replay store. Cheap to
/// share (`Arc`).
#[derive(Debug)]
pub struct DpopVerifier {
    /// Accepted distance of `iat` from now, seconds (either side: clocks differ).
    window: i64,
    replay: ReplayStore,
    /// `Some` when this server issues nonces (RFC 9449 §8, §9).
    nonces: Option<NonceSource>,
}

impl DpopVerifier {
    /// `window_secs`: how far `iat` may be from now; `max_entries`: the bound of the
    /// in-process replay cache.
    pub fn new(window_secs: i64, max_entries: usize) -> Self {
        Self {
            window: window_secs.max(1),
            replay: ReplayStore::local(max_entries),
            nonces: None,
        }
    }

    /// Keep spent `jti`s in `store` (e.g. Redis, shared by replicas) instead.
    pub fn with_replay(mut self, store: ReplayStore) -> Self {
        self.replay = store;
        self
    }

    /// This server issues nonces from `source` (callers ask for them where the server says
    /// so; a full replay cache answers `use_dpop_nonce`).
    pub fn with_nonces(mut self, source: NonceSource) -> Self {
        self.nonces = Some(source);
        self
    }

    pub fn window(&self) -> i64 {
        self.window
    }

    /// This server's nonce source, when nonces are on.
    pub fn nonces(&self) -> Option<&NonceSource> {
        self.nonces.as_ref()
    }

    /// The nonce to hand out now (`DPoP-Nonce`), when nonces are on.
    pub fn current_nonce(&self, now: i64) -> Option<String> {
        self.nonces.as_ref().map(|n| n.current(now))
    }

    /// Check and spend `proof` for `req` at `now` (RFC 9449 §4.3): [`Self::check`], then
    /// [`Self::spend`].
    pub async fn verify(
        &self,
        proof: &str,
        req: &ProofRequest<'_>,
        nonce: Option<&dyn NonceCheck>,
        now: i64,
    ) -> Result<VerifiedProof, DpopError> {
        let verified = self.check(proof, req, nonce, now)?;
        self.spend(&verified, now).await?;
        Ok(verified)
    }

    /// Use up the proof's `jti` (§11.1): refused when it was used before; when the replay
    /// cache is full of live entries, `use_dpop_nonce` if this server issues nonces, else
    /// [`DpopError::Unavailable`] (never by forgetting a live entry).
    pub async fn spend(&self, proof: &VerifiedProof, now: i64) -> Result<(), DpopError> {
        match self.replay.first_use(&proof.replay, now).await {
            replay::Spend::First => Ok(()),
            replay::Spend::Replayed => {
                Err(DpopError::invalid("the DPoP proof was already used (jti)"))
            }
            replay::Spend::Full { .. } if self.nonces.is_some() => Err(DpopError::UseNonce),
            replay::Spend::Full { retry_after } => Err(DpopError::Unavailable { retry_after }),
        }
    }

    /// Verify `proof` for `req` at `now` (RFC 9449 §4.3), all but the `jti`'s first use
    /// ([`Self::spend`]): a refused proof does not use up its `jti`. `nonce`: when `Some`, the
    /// proof must carry a nonce it accepts (§8).
    pub fn check(
        &self,
        proof: &str,
        req: &ProofRequest<'_>,
        nonce: Option<&dyn NonceCheck>,
        now: i64,
    ) -> Result<VerifiedProof, DpopError> {
        // §4.3 step 2: a well-formed JWT (compact JWS, three parts).
        if proof.len() > MAX_PROOF_BYTES {
            return Err(DpopError::invalid("the DPoP proof is too large"));
        }
        let mut parts = proof.split('.');
        let (Some(h64), Some(p64), Some(s64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(DpopError::invalid("the DPoP proof is not a compact JWS"));
        };
        let header = json_object(h64, "header")?;
        let claims = json_object(p64, "payload")?;
        let sig = B64
            .decode(s64)
            .map_err(|_| DpopError::invalid("the DPoP proof signature is not base64url"))?;

        // Steps 3–4: `typ` is dpop+jwt.
        if header.get("typ").and_then(Value::as_str) != Some(PROOF_TYP) {
            return Err(DpopError::invalid("the DPoP proof typ must be dpop+jwt"));
        }
        // Step 5: an asymmetric algorithm we support (never none, never HS*).
        let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
        if !SUPPORTED_ALGS.contains(&alg) {
            return Err(DpopError::invalid(format!(
                "the DPoP proof alg must be one of {CHALLENGE_ALGS}"
            )));
        }
        // Step 7: the `jwk` is a public key (no private members); RFC 9449 §4.2 forbids `crit`
        // uses we do not understand, so refuse any `crit`.
        let Some(Value::Object(jwk)) = header.get("jwk") else {
            return Err(DpopError::invalid("the DPoP proof has no jwk header"));
        };
        if header.contains_key("crit") {
            return Err(DpopError::invalid("the DPoP proof has unsupported crit"));
        }
        let key = PublicJwk::parse(jwk, alg)?;
        // Step 6: the signature verifies with that key.
        let signing_input = &proof[..h64.len() + 1 + p64.len()];
        key.verify(signing_input.as_bytes(), &sig)?;

        // Step 3: the required claims, with the right types.
        let text = |name: &str| claims.get(name).and_then(Value::as_str);
        let jti = text("jti")
            .filter(|j| !j.is_empty() && j.len() <= MAX_JTI)
            .ok_or_else(|| DpopError::invalid("the DPoP proof needs a jti"))?;
        let htm = text("htm").ok_or_else(|| DpopError::invalid("the DPoP proof needs htm"))?;
        let htu = text("htu").ok_or_else(|| DpopError::invalid("the DPoP proof needs htu"))?;
        let iat = claims
            .get("iat")
            .and_then(Value::as_i64)
            .ok_or_else(|| DpopError::invalid("the DPoP proof needs a numeric iat"))?;

        // Step 8: htm is the request's method (case-sensitive, RFC 9110 §9.1).
        if htm != req.method {
            return Err(DpopError::invalid(
                "the DPoP proof htm does not match the request method",
            ));
        }
        // Step 9: htu is the request's URI, without query and fragment, normalised.
        let presented = normalise_htu(htu);
        if presented.is_none() || presented != normalise_htu(req.uri) {
            return Err(DpopError::invalid(
                "the DPoP proof htu does not match the request URI",
            ));
        }
        // Step 10: the nonce, when this server asks for one.
        if let Some(rule) = nonce {
            match text("nonce") {
                Some(n) if rule.accepts(n, now) => {}
                _ => return Err(DpopError::UseNonce),
            }
        }
        // Step 11: created recently (both ways: client clocks run ahead too).
        // `abs_diff`: an absurd iat (i64::MIN) must not overflow.
        if now.abs_diff(iat) > self.window.unsigned_abs() {
            return Err(DpopError::invalid(
                "the DPoP proof iat is outside the accepted window",
            ));
        }
        // Step 12 (§7): `ath` is the hash of the access token that came with it.
        if let Some(token) = req.access_token {
            let expected = ath(token);
            match text("ath") {
                Some(a) if ct_eq(a.as_bytes(), expected.as_bytes()) => {}
                Some(_) => {
                    return Err(DpopError::invalid(
                        "the DPoP proof ath does not match the access token",
                    ));
                }
                None => return Err(DpopError::invalid("the DPoP proof needs ath")),
            }
        }
        let jkt = key.thumbprint();
        // §11.1: remembered while the proof could be accepted (until `iat` + window, the
        // last second included).
        let replay = replay::Seen::of(&jkt, jti, iat.saturating_add(self.window + 1));
        Ok(VerifiedProof { jkt, iat, replay })
    }
}

fn json_object(part: &str, what: &str) -> Result<Map<String, Value>, DpopError> {
    let bytes = B64
        .decode(part)
        .map_err(|_| DpopError::invalid(format!("the DPoP proof {what} is not base64url")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(DpopError::invalid(format!(
            "the DPoP proof {what} is not a JSON object"
        ))),
    }
}

/// `ath` (RFC 9449 §4.2): base64url(SHA-256(ASCII access token)).
pub fn ath(access_token: &str) -> String {
    B64.encode(digest::digest(&digest::SHA256, access_token.as_bytes()))
}

/// The `htu` comparison form (RFC 9449 §4.3 step 9, RFC 3986 §6.2.2–6.2.3): scheme and host in
/// lowercase, default port dropped, dot segments and percent-encoding normalised, an empty path
/// as `/`, no query and no fragment. `None` when it is not an absolute http(s) URI.
pub fn normalise_htu(uri: &str) -> Option<String> {
    let mut u = url::Url::parse(uri).ok()?;
    if !matches!(u.scheme(), "https" | "http") || u.host_str().is_none() {
        return None;
    }
    u.set_query(None);
    u.set_fragment(None);
    Some(u.to_string())
}

/// A proof key from the `jwk` header, checked against `alg`.
enum PublicJwk {
    /// P-256 (ES256): the 65-byte uncompressed point; thumbprint members.
    Ec {
        point: Vec<u8>,
        x: String,
        y: String,
    },
    /// RSA (RS256), at least 2048 bits.
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
        n64: String,
        e64: String,
    },
    /// Ed25519 (EdDSA).
    Ed { x: Vec<u8>, x64: String },
}

/// JWK members that only private keys have (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
const PRIVATE_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

impl PublicJwk {
    fn parse(jwk: &Map<String, Value>, alg: &str) -> Result<Self, DpopError> {
        if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
            return Err(DpopError::invalid(
                "the DPoP proof jwk must be a public key (it has private members)",
            ));
        }
        let member = |name: &str| -> Result<(String, Vec<u8>), DpopError> {
            let v = jwk
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| DpopError::invalid(format!("the DPoP proof jwk lacks {name}")))?;
            let bytes = B64.decode(v).map_err(|_| {
                DpopError::invalid(format!("the DPoP proof jwk {name} is not base64url"))
            })?;
            Ok((v.to_owned(), bytes))
        };
        let kty = jwk.get("kty").and_then(Value::as_str).unwrap_or("");
        let crv = jwk.get("crv").and_then(Value::as_str).unwrap_or("");
        match (alg, kty, crv) {
            ("ES256", "EC", "P-256") => {
                let (x, xb) = member("x")?;
                let (y, yb) = member("y")?;
                if xb.len() != 32 || yb.len() != 32 {
                    return Err(DpopError::invalid(
                        "the DPoP proof jwk is not a P-256 point",
                    ));
                }
                let mut point = Vec::with_capacity(65);
                point.push(4);
                point.extend_from_slice(&xb);
                point.extend_from_slice(&yb);
                Ok(Self::Ec { point, x, y })
            }
            ("RS256", "RSA", _) => {
                let (n64, n) = member("n")?;
                let (e64, e) = member("e")?;
                Ok(Self::Rsa { n, e, n64, e64 })
            }
            ("EdDSA", "OKP", "Ed25519") => {
                let (x64, x) = member("x")?;
                if x.len() != 32 {
                    return Err(DpopError::invalid(
                        "the DPoP proof jwk is not an Ed25519 key",
                    ));
                }
                Ok(Self::Ed { x, x64 })
            }
            _ => Err(DpopError::invalid(
                "the DPoP proof jwk does not fit its alg (ES256: EC P-256, RS256: RSA, EdDSA: OKP Ed25519)",
            )),
        }
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), DpopError> {
        let ok = match self {
            Self::Ec { point, .. } => {
                signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(msg, sig)
                    .is_ok()
            }
            // RSA_PKCS1_2048_8192_SHA256 refuses moduli under 2048 bits.
            Self::Rsa { n, e, .. } => signature::RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, msg, sig)
                .is_ok(),
            Self::Ed { x, .. } => signature::UnparsedPublicKey::new(&signature::ED25519, x)
                .verify(msg, sig)
                .is_ok(),
        };
        if ok {
            Ok(())
        } else {
            Err(DpopError::invalid(
                "the DPoP proof signature does not verify",
            ))
        }
    }

    /// RFC 7638 §3.2: the required members only, lexicographic order, no whitespace.
    fn thumbprint(&self) -> Jkt {
        let s = |v: &str| Value::String(v.to_owned()).to_string();
        let canonical = match self {
            Self::Ec { x, y, .. } => {
                format!(r#"{{"crv":"P-256","kty":"EC","x":{},"y":{}}}"#, s(x), s(y))
            }
            Self::Rsa { n64, e64, .. } => {
                format!(r#"{{"e":{},"kty":"RSA","n":{}}}"#, s(e64), s(n64))
            }
            Self::Ed { x64, .. } => {
                format!(r#"{{"crv":"Ed25519","kty":"OKP","x":{}}}"#, s(x64))
            }
        };
        Jkt::of_canonical(&canonical)
    }
}

/// The RFC 7638 SHA-256 thumbprint of a public JWK (members as in a proof's `jwk` header).
pub fn thumbprint(jwk: &Value, alg: &str) -> Result<Jkt, DpopError> {
    let Value::Object(m) = jwk else {
        return Err(DpopError::invalid("a JWK is a JSON object"));
    };
    Ok(PublicJwk::parse(m, alg)?.thumbprint())
}

/// Stateless server nonces (RFC 9449 §8, §9): the nonce of a time window is a MAC of the
/// window's number under a server key, so every replica that shares the key issues and accepts
/// the same nonces without shared state. The current and the previous window are accepted.
#[derive(Clone)]
pub struct NonceSource {
    key: [u8; 32],
    period: i64,
}

impl std::fmt::Debug for NonceSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceSource")
            .field("period", &self.period)
            .finish_non_exhaustive()
    }
}

impl NonceSource {
    /// `key`: a secret derived for this purpose only; `period_secs`: a nonce's window.
    pub fn new(key: [u8; 32], period_secs: i64) -> Self {
        Self {
            key,
            period: period_secs.max(1),
        }
    }

    fn of_window(&self, window: i64) -> String {
        let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &self.key);
        let tag = aws_lc_rs::hmac::sign(&k, &window.to_be_bytes());
        B64.encode(&tag.as_ref()[..18])
    }

    /// The nonce to hand out now.
    pub fn current(&self, now: i64) -> String {
        self.of_window(now.div_euclid(self.period))
    }
}

impl NonceCheck for NonceSource {
    fn accepts(&self, nonce: &str, now: i64) -> bool {
        let w = now.div_euclid(self.period);
        // Both compared (no early exit on the first).
        let a = ct_eq(nonce.as_bytes(), self.of_window(w).as_bytes());
        let b = ct_eq(nonce.as_bytes(), self.of_window(w - 1).as_bytes());
        a | b
    }
}

/// A client's ES256 proof key (RFC 9449 §4.2): generates, saves (PKCS#8) and signs proofs.
pub struct DpopKey {
    pair: signature::EcdsaKeyPair,
    jwk: Value,
    jkt: Jkt,
}

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopKey")
            .field("jkt", &self.jkt)
            .finish_non_exhaustive()
    }
}

/// What a proof says beyond the request (for tests that need odd proofs).
#[derive(Debug, Clone, Default)]
pub struct ProofClaims<'a> {
    pub htm: &'a str,
    pub htu: &'a str,
    pub iat: i64,
    /// Random when `None`.
    pub jti: Option<&'a str>,
    pub access_token: Option<&'a str>,
    pub nonce: Option<&'a str>,
}

impl DpopKey {
    /// A new P-256 key.
    pub fn generate() -> Result<Self, aws_lc_rs::error::Unspecified> {
        let pair = signature::EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)?;
        Ok(Self::from_pair(pair))
    }

    /// A key saved with [`DpopKey::to_pkcs8`].
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, aws_lc_rs::error::KeyRejected> {
        let pair =
            signature::EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der)?;
        Ok(Self::from_pair(pair))
    }

    /// The private key, PKCS#8 DER (keep it secret: it is what binds the tokens).
    pub fn to_pkcs8(&self) -> Result<Vec<u8>, aws_lc_rs::error::Unspecified> {
        Ok(self.pair.to_pkcs8v1()?.as_ref().to_vec())
    }

    fn from_pair(pair: signature::EcdsaKeyPair) -> Self {
        use signature::KeyPair;
        let point = pair.public_key().as_ref();
        let jwk = serde_json::json!({
            "kty": "EC",
            "crv": "P-256",
            "x": B64.encode(&point[1..33]),
            "y": B64.encode(&point[33..65]),
        });
        let jkt = thumbprint(&jwk, "ES256").unwrap_or(Jkt([0; 32]));
        Self { pair, jwk, jkt }
    }

    /// The key's thumbprint (what the server binds tokens to).
    pub fn jkt(&self) -> &Jkt {
        &self.jkt
    }

    /// A proof for `htm` `htu` at `iat`, with `ath` for `access_token` and the server's nonce.
    pub fn proof(
        &self,
        htm: &str,
        htu: &str,
        iat: i64,
        access_token: Option<&str>,
        nonce: Option<&str>,
    ) -> String {
        self.proof_with(&ProofClaims {
            htm,
            htu,
            iat,
            jti: None,
            access_token,
            nonce,
        })
    }

    /// A proof with every claim chosen.
    pub fn proof_with(&self, c: &ProofClaims<'_>) -> String {
        let header = serde_json::json!({ "typ": PROOF_TYP, "alg": "ES256", "jwk": self.jwk });
        let jti = c
            .jti
            .map(str::to_owned)
            .unwrap_or_else(|| B64.encode(crate::crypto::random_bytes::<16>()));
        let mut claims =
            serde_json::json!({ "jti": jti, "htm": c.htm, "htu": c.htu, "iat": c.iat });
        if let Some(t) = c.access_token {
            claims["ath"] = Value::String(ath(t));
        }
        if let Some(n) = c.nonce {
            claims["nonce"] = Value::String(n.to_owned());
        }
        self.sign(&header, &claims)
    }

    /// Sign any header and claims (tests use it for malformed proofs).
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let rng = rand::SystemRandom::new();
        // Signing with a valid key pair into memory does not fail; an empty signature would
        // only make the proof refused.
        let sig = self
            .pair
            .sign(&rng, input.as_bytes())
            .map(|s| B64.encode(s.as_ref()))
            .unwrap_or_default();
        format!("{input}.{sig}")
    }

    /// The public JWK.
    pub fn public_jwk(&self) -> &Value {
        &self.jwk
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
