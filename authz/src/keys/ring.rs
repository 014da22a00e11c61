//! The key ring: the active signing key plus every still-published public key, swapped
//! atomically when keys are rotated or reloaded from storage.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use super::signer::{SigningAlg, SigningKey};
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::store::{KeyPurpose, KeyStatus, KeyStore, StoredKey};

/// One consistent view of the keys.
#[derive(Debug)]
pub struct KeySet {
    /// Signs every new access token.
    pub active: Arc<SigningKey>,
    /// Signs ID tokens: always RS256 (OIDC Core §15.1), the active key when that is RS256.
    pub id_token: Arc<SigningKey>,
    /// The JWKS document (active first), pre-serialized.
    pub jwks_json: String,
    pub kids: Vec<String>,
    /// Every published key, for checking tokens this server issued (ID token hints,
    /// `/userinfo`), each bound to its one algorithm (RFC 8725 §3.1).
    pub verifying: HashMap<String, (Arc<DecodingKey>, Algorithm)>,
}

impl KeySet {
    /// Verify a JWT this server signed: known `kid`, the key's own algorithm, the expected
    /// `typ`, our issuer, and with `now` the expiry against the server's own clock (no leeway:
    /// the issuer's clock is the reference).
    /// `now = None` accepts expired tokens (ID token hints, OIDC RP-Initiated Logout §2).
    pub fn verify_own<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        typ: &str,
        issuer: &str,
        now: Option<i64>,
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
        // Expiry is checked below against the injected clock, not the system's.
        v.validate_exp = false;
        v.set_required_spec_claims(&["iss", "sub", "exp"]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(token, key, &v)
            .ok()?
            .claims;
        if let Some(now) = now {
            let exp = claims.get("exp")?.as_i64()?;
            if exp <= now {
                return None;
            }
        }
        serde_json::from_value(claims).ok()
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

/// Decrypt a stored key and check it matches its kid.
fn open_key(master: &MasterKey, row: &StoredKey) -> Result<SigningKey> {
    let alg: SigningAlg = row.alg.parse().map_err(Error::internal)?;
    let der = master
        .open(row.kid.as_bytes(), &row.private_key_enc)
        .map_err(|e| {
            Error::internal(format!(
                "signing key {}: {e} (is AUTHZ_MASTER_KEY / master.key the one that created it?)",
                row.kid
            ))
        })?;
    let key = SigningKey::from_pkcs8(alg, &der)?;
    if key.kid() != row.kid {
        return Err(Error::internal(format!(
            "signing key {} does not match its kid",
            row.kid
        )));
    }
    Ok(key)
}

/// Read the published keys, decrypt the active ones and build the JWKS.
pub async fn load_key_set(store: &dyn KeyStore, master: &MasterKey, now: i64) -> Result<KeySet> {
    let keys = store.published_keys(now).await?;
    let active_row = keys
        .iter()
        .find(|k| k.status == KeyStatus::Active && k.purpose == KeyPurpose::Access)
        .ok_or_else(|| Error::internal("no active signing key; run `authz keys rotate`"))?;
    let active = Arc::new(open_key(master, active_row)?);
    // ID tokens: the access key when it is RS256, else the dedicated RS256 key.
    let id_token = match keys.iter().find(|k| {
        k.status == KeyStatus::Active && k.purpose == KeyPurpose::IdToken && k.alg == "RS256"
    }) {
        Some(row) if active.alg() != SigningAlg::Rs256 => Arc::new(open_key(master, row)?),
        _ => Arc::clone(&active),
    };
    let mut jwks = JwkSet {
        keys: vec![active.public_jwk().clone()],
    };
    let active_row = &active_row.kid;
    let mut kids = vec![active.kid().to_owned()];
    for k in keys.iter().filter(|k| k.kid != *active_row) {
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
        active,
        id_token,
        jwks_json,
        kids,
        verifying,
    })
}

/// Generate a key of `alg` for `purpose`, store it encrypted and make it active. The previous
/// key of that purpose stays published until `publish_until` so tokens it signed still verify.
async fn activate_new(
    store: &dyn KeyStore,
    master: &MasterKey,
    alg: SigningAlg,
    purpose: KeyPurpose,
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
        purpose,
        private_key_enc: master.seal(key.kid().as_bytes(), &der),
        public_jwk: serde_json::to_string(key.public_jwk()).map_err(Error::internal)?,
        status: KeyStatus::Active,
        created_at: now,
        retired_at: None,
        publish_until: None,
    };
    store.activate_key(&stored, publish_until).await?;
    Ok(stored.kid)
}

/// Make a new key of `alg` the access-token signing key. An RS256 key for ID tokens is kept
/// active beside a non-RS256 one (and retired when access tokens are RS256 again).
pub async fn rotate(
    store: &dyn KeyStore,
    master: &MasterKey,
    alg: SigningAlg,
    now: i64,
    publish_until: i64,
) -> Result<String> {
    let kid = activate_new(store, master, alg, KeyPurpose::Access, now, publish_until).await?;
    ensure_id_token_key(store, master, alg, now, publish_until).await?;
    store.prune_keys(now).await?;
    Ok(kid)
}

async fn ensure_id_token_key(
    store: &dyn KeyStore,
    master: &MasterKey,
    access_alg: SigningAlg,
    now: i64,
    publish_until: i64,
) -> Result<()> {
    if access_alg == SigningAlg::Rs256 {
        store
            .retire_keys(KeyPurpose::IdToken, now, publish_until)
            .await?;
        return Ok(());
    }
    let keys = store.published_keys(now).await?;
    let has = keys
        .iter()
        .any(|k| k.status == KeyStatus::Active && k.purpose == KeyPurpose::IdToken);
    if !has {
        activate_new(
            store,
            master,
            SigningAlg::Rs256,
            KeyPurpose::IdToken,
            now,
            publish_until,
        )
        .await?;
    }
    Ok(())
}

/// On start: make sure an active access key of the configured algorithm exists (and the RS256
/// ID-token key beside it when needed). Returns the new kid when one had to be created.
pub async fn ensure_active_key(
    store: &dyn KeyStore,
    master: &MasterKey,
    alg: SigningAlg,
    now: i64,
    publish_until: i64,
) -> Result<Option<String>> {
    let keys = store.published_keys(now).await?;
    let current = keys
        .iter()
        .find(|k| k.status == KeyStatus::Active && k.purpose == KeyPurpose::Access);
    match current {
        Some(k) if k.alg == alg.as_str() => {
            ensure_id_token_key(store, master, alg, now, publish_until).await?;
            Ok(None)
        }
        _ => rotate(store, master, alg, now, publish_until)
            .await
            .map(Some),
    }
}
