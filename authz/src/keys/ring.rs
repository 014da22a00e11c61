//! The key ring: the active signing key plus every still-published public key, swapped
//! atomically when keys are rotated or reloaded from storage.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use super::signer::{SigningAlg, SigningKey};
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::store::{KeyStatus, KeyStore, StoredKey};

/// One consistent view of the keys.
#[derive(Debug)]
pub struct KeySet {
    /// Signs every new token.
    pub active: Arc<SigningKey>,
    /// The JWKS document (active first), pre-serialized.
    pub jwks_json: String,
    pub kids: Vec<String>,
    /// Every published key, for checking tokens this server issued (ID token hints,
    /// `/userinfo`), each bound to its one algorithm (RFC 8725 §3.1).
    pub verifying: HashMap<String, (Arc<DecodingKey>, Algorithm)>,
}

impl KeySet {
    /// Verify a JWT this server signed: known `kid`, the key's own algorithm, the expected
    /// `typ`, our issuer. `exp` is checked unless `allow_expired` (ID token hints may be old,
    /// OIDC RP-Initiated Logout §2).
    pub fn verify_own<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        typ: &str,
        issuer: &str,
        allow_expired: bool,
    ) -> Option<T> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.typ.as_deref() != Some(typ) {
            return None;
        }
        let (key, alg) = self.verifying.get(header.kid.as_deref()?)?;
        if header.alg != *alg {
            return None;
        }
        let mut v = Validation::new(*alg);
        v.set_issuer(&[issuer]);
        v.validate_aud = false;
        v.validate_exp = !allow_expired;
        v.leeway = 30;
        let mut required = vec!["iss", "sub"];
        if !allow_expired {
            required.push("exp");
        }
        v.set_required_spec_claims(&required);
        jsonwebtoken::decode::<T>(token, key, &v)
            .ok()
            .map(|d| d.claims)
    }
}

/// Holds the current [`KeySet`]; readers take a cheap `Arc` clone.
#[derive(Debug)]
pub struct KeyRing(RwLock<Arc<KeySet>>);

impl KeyRing {
    pub fn new(set: KeySet) -> Self {
        Self(RwLock::new(Arc::new(set)))
    }

    pub fn current(&self) -> Arc<KeySet> {
        match self.0.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    pub fn replace(&self, set: KeySet) {
        let new = Arc::new(set);
        match self.0.write() {
            Ok(mut g) => *g = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }
}

/// Read the published keys, decrypt the active one and build the JWKS.
pub async fn load_key_set(store: &dyn KeyStore, master: &MasterKey, now: i64) -> Result<KeySet> {
    let keys = store.published_keys(now).await?;
    let active_row = keys
        .iter()
        .find(|k| k.status == KeyStatus::Active)
        .ok_or_else(|| Error::internal("no active signing key; run `authz keys rotate`"))?;
    let alg: SigningAlg = active_row.alg.parse().map_err(Error::internal)?;
    let der = master
        .open(active_row.kid.as_bytes(), &active_row.private_key_enc)
        .map_err(|e| {
            Error::internal(format!(
                "signing key {}: {e} (is AUTHZ_MASTER_KEY / master.key the one that created it?)",
                active_row.kid
            ))
        })?;
    let active = SigningKey::from_pkcs8(alg, &der)?;
    if active.kid() != active_row.kid {
        return Err(Error::internal(format!(
            "signing key {} does not match its kid",
            active_row.kid
        )));
    }
    let mut jwks = JwkSet {
        keys: vec![active.public_jwk().clone()],
    };
    let mut kids = vec![active.kid().to_owned()];
    for k in keys.iter().filter(|k| k.kid != active_row.kid) {
        let jwk: Jwk = serde_json::from_str(&k.public_jwk)
            .map_err(|e| Error::internal(format!("public key {}: {e}", k.kid)))?;
        jwks.keys.push(jwk);
        kids.push(k.kid.clone());
    }
    let jwks_json = serde_json::to_string(&jwks).map_err(Error::internal)?;
    let mut verifying = HashMap::new();
    for jwk in &jwks.keys {
        let (Some(kid), Some(alg)) = (jwk.common.key_id.clone(), jwk.common.key_algorithm) else {
            continue;
        };
        use jsonwebtoken::jwk::KeyAlgorithm as K;
        let alg = match alg {
            K::RS256 => Algorithm::RS256,
            K::ES256 => Algorithm::ES256,
            K::EdDSA => Algorithm::EdDSA,
            _ => continue,
        };
        let key = DecodingKey::from_jwk(jwk)
            .map_err(|e| Error::internal(format!("public key {kid}: {e}")))?;
        verifying.insert(kid, (Arc::new(key), alg));
    }
    Ok(KeySet {
        active: Arc::new(active),
        jwks_json,
        kids,
        verifying,
    })
}

/// Generate a key of `alg`, store it encrypted and make it the active key. The previous active
/// key stays published until `publish_until` so tokens it signed still verify.
pub async fn rotate(
    store: &dyn KeyStore,
    master: &MasterKey,
    alg: SigningAlg,
    now: i64,
    publish_until: i64,
) -> Result<String> {
    // RSA key generation takes tens of milliseconds: keep it off the async workers.
    let (key, der) = tokio::task::spawn_blocking(move || SigningKey::generate(alg))
        .await
        .map_err(Error::internal)??;
    let stored = StoredKey {
        kid: key.kid().to_owned(),
        alg: alg.as_str().to_owned(),
        private_key_enc: master.seal(key.kid().as_bytes(), &der),
        public_jwk: serde_json::to_string(key.public_jwk()).map_err(Error::internal)?,
        status: KeyStatus::Active,
        created_at: now,
        retired_at: None,
        publish_until: None,
    };
    store.activate_key(&stored, publish_until).await?;
    store.prune_keys(now).await?;
    Ok(stored.kid)
}

/// On start: make sure an active key of the configured algorithm exists. Returns the new kid
/// when one had to be created.
pub async fn ensure_active_key(
    store: &dyn KeyStore,
    master: &MasterKey,
    alg: SigningAlg,
    now: i64,
    publish_until: i64,
) -> Result<Option<String>> {
    let keys = store.published_keys(now).await?;
    match keys.iter().find(|k| k.status == KeyStatus::Active) {
        Some(k) if k.alg == alg.as_str() => Ok(None),
        _ => rotate(store, master, alg, now, publish_until)
            .await
            .map(Some),
    }
}
