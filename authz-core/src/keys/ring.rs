//! The key ring: the active signing key, the next one (published before it signs), and every
//! still-published public key, swapped atomically when keys are rotated or reloaded.
//!
//! Rotation publishes first and signs later: `keys rotate` stores the new key as `next` with an
//! `activate_at` at least one JWKS cache lifetime (plus the reload interval) away, so every
//! resource server has it before the first token it signs reaches them. From `activate_at` on
//! the ring signs with it (even before storage promotes it); `--now` skips the wait for an
//! emergency, at the price that resource servers refuse the new tokens until they refetch.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};

use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::keys::signer::{SigningAlg, SigningKey};
use crate::store::{KeyPurpose, KeyStatus, KeyStore, StoredKey};

/// The keys that sign from `activate_at` on.
#[derive(Debug)]
pub struct NextKeys {
    pub activate_at: i64,
    pub access: Arc<SigningKey>,
    pub id_token: Arc<SigningKey>,
}

/// One consistent view of the keys.
#[derive(Debug)]
pub struct KeySet {
    /// Signs every new access token (until `next` is due).
    pub active: Arc<SigningKey>,
    /// Signs ID tokens: always RS256 (OIDC Core §15.1), the active key when that is RS256.
    pub id_token: Arc<SigningKey>,
    /// A published key waiting for its time.
    pub next: Option<NextKeys>,
    /// The JWKS document (active first), pre-serialized.
    pub jwks_json: String,
    pub kids: Vec<String>,
    /// Every published key, for checking tokens this server issued (ID token hints,
    /// `/userinfo`), each bound to its one algorithm (RFC 8725 §3.1).
    pub verifying: HashMap<String, (Arc<DecodingKey>, Algorithm)>,
}

impl KeySet {
    /// The (access, ID token) signers at `now`.
    pub fn signers(&self, now: i64) -> (&Arc<SigningKey>, &Arc<SigningKey>) {
        match &self.next {
            Some(n) if n.activate_at <= now => (&n.access, &n.id_token),
            _ => (&self.active, &self.id_token),
        }
    }

    /// Verify a JWT this server signed: known `kid`, the key's own algorithm, the expected
    /// `typ`, our issuer, and with `now` the expiry against the server's own clock (no leeway:
    /// the issuer's clock is the reference).
    /// `now = None` accepts expired tokens (ID token hints, OIDC RP-Initiated Logout §2).
    pub(crate) fn verify_own<T: serde::de::DeserializeOwned>(
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
        let claims = super::jws::verify_signature(token, key, *alg)?;
        if claims.get("iss")?.as_str()? != issuer || claims.get("sub").is_none() {
            return None;
        }
        // Expiry against the injected clock, not the system's.
        let exp = claims.get("exp")?.as_i64()?;
        if now.is_some_and(|now| exp <= now) {
            return None;
        }
        serde_json::from_value(claims).ok()
    }
}

/// Holds the current [`KeySet`]; readers take a cheap `Arc` clone.
///
/// Reloads run concurrently (the timer, a change notification, a rotation, housekeeping), so
/// each takes a [`Reload`] ticket *before* it reads storage and its set is kept only if no
/// reload that started later has been kept already: a slow reload can never put back keys
/// that a newer one saw retired, nor drop a next key a newer one saw published.
#[derive(Debug)]
pub struct KeyRing {
    /// The set, and the ticket of the reload that stored it (0: the start-up set).
    current: RwLock<(u64, Arc<KeySet>)>,
    tickets: AtomicU64,
}

/// The order in which a reload started ([`KeyRing::begin_reload`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Reload(u64);

impl KeyRing {
    pub fn new(set: KeySet) -> Self {
        Self {
            current: RwLock::new((0, Arc::new(set))),
            tickets: AtomicU64::new(0),
        }
    }

    pub fn current(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(g) => Arc::clone(&g.1),
            Err(poisoned) => Arc::clone(&poisoned.into_inner().1),
        }
    }

    /// A ticket for a reload about to read storage.
    pub(crate) fn begin_reload(&self) -> Reload {
        Reload(self.tickets.fetch_add(1, Ordering::SeqCst) + 1)
    }

    /// Keep `set`, read under `ticket`, unless a reload that started later was kept already;
    /// whether it was kept.
    pub fn replace(&self, ticket: Reload, set: KeySet) -> bool {
        let mut g = match self.current.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if ticket.0 <= g.0 {
            return false;
        }
        *g = (ticket.0, Arc::new(set));
        true
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
pub(crate) async fn load_key_set(
    store: &dyn KeyStore,
    master: &MasterKey,
    now: i64,
) -> Result<KeySet> {
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
    // The next key (if any): published now, signing from its activate_at.
    let next_row = keys
        .iter()
        .find(|k| k.status == KeyStatus::Next && k.purpose == KeyPurpose::Access);
    let next = match next_row {
        None => None,
        Some(row) => {
            let access = Arc::new(open_key(master, row)?);
            let next_id = keys.iter().find(|k| {
                k.status == KeyStatus::Next && k.purpose == KeyPurpose::IdToken && k.alg == "RS256"
            });
            let id_token = match next_id {
                _ if access.alg() == SigningAlg::Rs256 => Arc::clone(&access),
                Some(r) => Arc::new(open_key(master, r)?),
                None => Arc::clone(&id_token),
            };
            Some(NextKeys {
                activate_at: row.activate_at.unwrap_or(now),
                access,
                id_token,
            })
        }
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
        next,
        jwks_json,
        kids,
        verifying,
    })
}

/// Generate a key of `alg` for `purpose` and store it encrypted: active at once
/// (`activate_at` = `None`; the previous key of that purpose stays published until
/// `publish_until` so tokens it signed still verify), or as the next key from `activate_at`.
async fn new_key(
    store: &dyn KeyStore,
    master: &MasterKey,
    alg: SigningAlg,
    purpose: KeyPurpose,
    now: i64,
    publish_until: i64,
    activate_at: Option<i64>,
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
        status: if activate_at.is_some() {
            KeyStatus::Next
        } else {
            KeyStatus::Active
        },
        created_at: now,
        retired_at: None,
        publish_until: None,
        activate_at,
    };
    match activate_at {
        None => store.activate_key(&stored, publish_until).await?,
        Some(_) => store.insert_key(&stored).await?,
    }
    Ok(stored.kid)
}

/// When a rotation takes effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activation {
    /// Sign with the new key at once (emergency: resource servers that have not fetched it
    /// yet refuse its tokens until they refetch).
    Now,
    /// Publish now, sign from this time on.
    At(i64),
    /// The rotation schedule's: as `At`, and only while `replacing` is still the active
    /// access key. The schedule decides from keys it read earlier; a replica whose decision
    /// went stale meanwhile (another replica scheduled and promoted the next key) must not
    /// schedule one more.
    Scheduled { at: i64, replacing: String },
}

/// Make a new key of `alg` the access-token signing key, now or from a later time (see the
/// module docs). An RS256 key for ID tokens is kept beside a non-RS256 one (and retired when
/// access tokens are RS256 again). A pending rotation must finish (or be overridden with
/// `Activation::Now`) before another is scheduled.
pub async fn rotate(
    store: &dyn KeyStore,
    master: &MasterKey,
    alg: SigningAlg,
    now: i64,
    publish_until: i64,
    when: Activation,
) -> Result<String> {
    // A pending key whose time has come is already signing somewhere: make it the active key
    // first, so it is retired properly (published while its tokens live), never dropped.
    promote_due(store, master, now, publish_until).await?;
    let published = store.published_keys(now).await?;
    if let Activation::Scheduled { replacing, .. } = &when {
        let active = published
            .iter()
            .find(|k| k.status == KeyStatus::Active && k.purpose == KeyPurpose::Access);
        if active.is_none_or(|k| &k.kid != replacing) {
            return Err(Error::Conflict(
                "the scheduled rotation was already done by another process".into(),
            ));
        }
    }
    let activate_at = match when {
        Activation::Now => None,
        Activation::At(at) | Activation::Scheduled { at, .. } => {
            if let Some(p) = published.iter().find(|k| k.status == KeyStatus::Next) {
                return Err(Error::Conflict(format!(
                    "key {} is already waiting to become active at {}; rotate with --now to \
                     replace it at once",
                    p.kid,
                    p.activate_at.unwrap_or_default()
                )));
            }
            Some(at)
        }
    };
    let kid = new_key(
        store,
        master,
        alg,
        KeyPurpose::Access,
        now,
        publish_until,
        activate_at,
    )
    .await?;
    match activate_at {
        None => {
            ensure_id_token_key(store, master, alg, now, publish_until, None).await?;
            store.prune_keys(now).await?;
        }
        // RS256 for ID tokens, published and activated together with the new key.
        Some(at) => ensure_id_token_key(store, master, alg, now, publish_until, Some(at)).await?,
    }
    Ok(kid)
}

/// What a withdrawal did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withdrawal {
    pub kid: String,
    pub purpose: KeyPurpose,
    /// The key that signs in its place from now on, when the withdrawn key was the active one.
    pub replaced_by: Option<String>,
}

/// Withdraw the key `kid` at once (a compromised key; `authz keys revoke`): out of the JWKS
/// and of every key ring that reloads (replicas are notified by the database), so the tokens
/// it signed stop verifying, here at once and at resource servers at their next JWKS fetch.
/// Its private half is wiped.
///
/// There is always a key to sign with: the active key of its purpose is first replaced by a
/// new one signing from now on (`Activation::Now`; `alg` for access tokens, RS256 for ID
/// tokens), then withdrawn. Pending and retired keys are simply withdrawn.
pub async fn withdraw(
    store: &dyn KeyStore,
    master: &MasterKey,
    kid: &str,
    alg: SigningAlg,
    now: i64,
    publish_until: i64,
) -> Result<Withdrawal> {
    // A pending key whose time has come is already signing: see it as the active key it is.
    promote_due(store, master, now, publish_until).await?;
    let all = store.all_keys().await?;
    let key = all
        .iter()
        .find(|k| k.kid == kid)
        .ok_or_else(|| Error::NotFound(format!("signing key {kid:?}")))?;
    let withdrawn_already =
        || Error::Invalid(format!("signing key {kid:?} has been withdrawn already"));
    let replaced_by = match (key.status, key.purpose) {
        (KeyStatus::Withdrawn, _) => return Err(withdrawn_already()),
        (KeyStatus::Next | KeyStatus::Retired, _) => None,
        (KeyStatus::Active, KeyPurpose::Access) => {
            Some(rotate(store, master, alg, now, publish_until, Activation::Now).await?)
        }
        (KeyStatus::Active, KeyPurpose::IdToken) => {
            let access_alg = all
                .iter()
                .find(|k| k.status == KeyStatus::Active && k.purpose == KeyPurpose::Access)
                .and_then(|k| k.alg.parse::<SigningAlg>().ok())
                .unwrap_or(alg);
            store
                .retire_keys(KeyPurpose::IdToken, now, publish_until)
                .await?;
            ensure_id_token_key(store, master, access_alg, now, publish_until, None).await?;
            // The new RS256 key, or none when access tokens are RS256 (they sign ID tokens).
            store
                .published_keys(now)
                .await?
                .into_iter()
                .find(|k| k.status == KeyStatus::Active && k.purpose == KeyPurpose::IdToken)
                .map(|k| k.kid)
        }
    };
    if !store.withdraw_key(kid, now).await? {
        return Err(withdrawn_already());
    }
    Ok(Withdrawal {
        kid: kid.to_owned(),
        purpose: key.purpose,
        replaced_by,
    })
}

/// The scheduled rotation (`AUTHZ_KEY_ROTATION_DAYS`): once the active access key has signed
/// for `period` less `prepublish` seconds, publish its successor to sign from
/// `max(since + period, now + prepublish)`, so it is in every JWKS for at least `prepublish`
/// seconds (≥ the resource servers' JWKS cache time) before its first token. Its promotion
/// (`promote_due`) retires the old key, published until its tokens have expired.
///
/// Every replica runs this; the database keeps one pending key per purpose (a partial unique
/// index), so when two replicas race the loser changes nothing. Returns the new kid and when
/// it starts signing, if this call made one.
pub(crate) async fn rotate_on_schedule(
    store: &dyn KeyStore,
    master: &MasterKey,
    alg: SigningAlg,
    now: i64,
    publish_until: i64,
    period: i64,
    prepublish: i64,
) -> Result<Option<(String, i64)>> {
    let keys = store.published_keys(now).await?;
    if keys.iter().any(|k| k.status == KeyStatus::Next) {
        return Ok(None);
    }
    let Some(active) = keys
        .iter()
        .find(|k| k.status == KeyStatus::Active && k.purpose == KeyPurpose::Access)
    else {
        return Ok(None);
    };
    // Signing since its promotion (pre-published keys) or its creation (immediate ones).
    let since = active.activate_at.unwrap_or(active.created_at);
    let switch_at = since.saturating_add(period);
    if now < switch_at.saturating_sub(prepublish) {
        return Ok(None);
    }
    let at = switch_at.max(now + prepublish);
    let when = Activation::Scheduled {
        at,
        replacing: active.kid.clone(),
    };
    match rotate(store, master, alg, now, publish_until, when).await {
        Ok(kid) => Ok(Some((kid, at))),
        // Another replica scheduled it first.
        Err(Error::Conflict(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Promote pending keys whose time has come (every reload does this): the old key of their
/// purpose is retired, published until `publish_until`; a dedicated ID-token key is retired
/// once access tokens are RS256 again. Returns how many keys were promoted.
pub(crate) async fn promote_due(
    store: &dyn KeyStore,
    master: &MasterKey,
    now: i64,
    publish_until: i64,
) -> Result<u64> {
    let promoted = store.promote_due_keys(now, publish_until).await?;
    if promoted > 0 {
        let set = load_key_set(store, master, now).await?;
        ensure_id_token_key(store, master, set.active.alg(), now, publish_until, None).await?;
        store.prune_keys(now).await?;
    }
    Ok(promoted)
}

/// The RS256 ID-token key beside an access key of `access_alg`: made when missing (active
/// now, or with the new access key at `activate_at`); retired when access tokens are RS256 (at
/// once only — a pre-published RS256 key retires it when it is promoted, `promote_due`).
async fn ensure_id_token_key(
    store: &dyn KeyStore,
    master: &MasterKey,
    access_alg: SigningAlg,
    now: i64,
    publish_until: i64,
    activate_at: Option<i64>,
) -> Result<()> {
    if access_alg == SigningAlg::Rs256 {
        if activate_at.is_none() {
            store
                .retire_keys(KeyPurpose::IdToken, now, publish_until)
                .await?;
        }
        return Ok(());
    }
    let keys = store.published_keys(now).await?;
    let has = keys
        .iter()
        .any(|k| k.status == KeyStatus::Active && k.purpose == KeyPurpose::IdToken);
    if !has {
        new_key(
            store,
            master,
            SigningAlg::Rs256,
            KeyPurpose::IdToken,
            now,
            publish_until,
            activate_at,
        )
        .await?;
    }
    Ok(())
}

/// On start: make sure an active access key of the configured algorithm exists (and the RS256
/// ID-token key beside it when needed). Returns the new kid when one had to be created.
pub(crate) async fn ensure_active_key(
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
            ensure_id_token_key(store, master, alg, now, publish_until, None).await?;
            Ok(None)
        }
        _ => rotate(store, master, alg, now, publish_until, Activation::Now)
            .await
            .map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> KeySet {
        let (key, _) = SigningKey::generate(SigningAlg::Es256).expect("key");
        let key = Arc::new(key);
        KeySet {
            kids: vec![key.kid().to_owned()],
            active: Arc::clone(&key),
            id_token: key,
            next: None,
            jwks_json: String::new(),
            verifying: HashMap::new(),
        }
    }

    /// Two reloads overlap and the one that started first finishes last: its (older) view
    /// is dropped, whichever order they finish in; the newest-started one is kept.
    #[test]
    fn a_reload_overtaken_by_a_newer_one_is_dropped() {
        let ring = KeyRing::new(set());
        let older = ring.begin_reload();
        let newer = ring.begin_reload();
        let (new_set, old_set) = (set(), set());
        let new_kids = new_set.kids.clone();
        assert!(ring.replace(newer, new_set));
        assert!(
            !ring.replace(older, old_set),
            "the older read is not put back"
        );
        assert_eq!(ring.current().kids, new_kids);
        // Positive control: in order, each is kept.
        let (a, b) = (ring.begin_reload(), ring.begin_reload());
        let (sa, sb) = (set(), set());
        let b_kids = sb.kids.clone();
        assert!(ring.replace(a, sa));
        assert!(ring.replace(b, sb));
        assert_eq!(ring.current().kids, b_kids);
    }
}
