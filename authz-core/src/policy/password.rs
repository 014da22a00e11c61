//! Passwords: argon2id on a fixed pool of hashing workers, verification with a dummy hash for
//! unknown users, and the NIST SP 800-63B policy (length bounds and a blocklist; no
//! composition rules, §3.1.1.2).
//!
//! Memory is bounded by construction. Each worker is a plain OS thread that owns one argon2
//! memory block of `m_cost` KiB, allocated once and reused for every hash (argon2's
//! `hash_password_into_with_memory`): no per-request 19 MiB allocation, so glibc's per-thread
//! arenas never accumulate them (measured: 1 GB RSS after a login burst with per-request
//! allocation on `spawn_blocking` threads, see `docs/benchmarks.md`). In front of the workers
//! is an admission queue of fixed length: a sign-in that finds it full is shed at once with
//! `Error::Overloaded` (503 + `Retry-After` on `/token`, a page on the login form) instead of
//! waiting without bound. Peak memory is workers × m_cost plus the server's own.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use shared::secret::Password;
use tokio::sync::{Semaphore, oneshot};

use crate::config::{Argon2Config, PasswordPolicyConfig};
use crate::crypto::{ct_eq, random_bytes};
use crate::error::{Error, Result};

/// Common passwords refused by policy (compared case-insensitively).
const BLOCKLIST: &str = include_str!("common-passwords.txt");

/// How long a shed sign-in is told to wait.
const RETRY_AFTER_SECS: u64 = 1;

enum Job {
    Hash {
        password: Password,
        reply: oneshot::Sender<Result<String>>,
    },
    Verify {
        password: Password,
        phc: String,
        reply: oneshot::Sender<bool>,
    },
}

/// Hashes and verifies passwords with fixed argon2id parameters on the worker pool.
#[derive(Clone)]
pub struct PasswordHasher {
    jobs: mpsc::Sender<Job>,
    /// Admission: one permit per job being hashed or waiting (workers + queue).
    admission: Arc<Semaphore>,
    capacity: usize,
    workers: usize,
    /// A real hash of a random password with the same parameters, verified against when the
    /// user does not exist so both paths cost the same.
    dummy_hash: Arc<String>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("workers", &self.workers)
            .field("waiting", &self.waiting())
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// Start the workers (`cfg.workers`, 0 = one per core) with a queue of `cfg.queue` jobs.
    pub fn new(cfg: &Argon2Config) -> Result<Self> {
        let params = Params::new(cfg.m_cost, cfg.t_cost, cfg.p_cost, None)
            .map_err(|e| Error::Invalid(format!("argon2 parameters: {e}")))?;
        let workers = match cfg.workers {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            n => n,
        };
        let mut memory = vec![Block::new(); params.block_count()];
        let dummy = hash_with(
            &params,
            crate::crypto::random_secret().as_bytes(),
            &mut memory,
        )?;
        drop(memory);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..workers {
            let rx = Arc::clone(&rx);
            let params = params.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || work(&rx, &params))
                .map_err(|e| Error::internal(format!("argon2 worker: {e}")))?;
        }
        Ok(Self {
            jobs: tx,
            admission: Arc::new(Semaphore::new(workers + cfg.queue)),
            capacity: workers + cfg.queue,
            workers,
            dummy_hash: Arc::new(dummy),
        })
    }

    /// Jobs admitted and not finished (being hashed or waiting): the queue depth.
    pub fn waiting(&self) -> usize {
        self.capacity
            .saturating_sub(self.admission.available_permits())
    }

    /// Is every worker busy and the queue full (a verification now would be shed)?
    pub(crate) fn saturated(&self) -> bool {
        self.admission.available_permits() == 0
    }

    /// Hash a password (argon2id PHC string). Administrative: waits for a worker.
    pub async fn hash(&self, password: &Password) -> Result<String> {
        let _permit = self.admission.acquire().await.map_err(Error::internal)?;
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Hash {
            password: password.clone(),
            reply,
        })?;
        answer.await.map_err(Error::internal)?
    }

    /// Verify against a stored hash; `None` (unknown user) verifies against the dummy hash and
    /// returns `false`, taking the same time. Sheds (`Error::Overloaded`) when the queue is
    /// full rather than wait.
    pub async fn verify(&self, password: &Password, stored: Option<&str>) -> Result<bool> {
        let _permit = self
            .admission
            .try_acquire()
            .map_err(|_| Error::Overloaded {
                retry_after: RETRY_AFTER_SECS,
            })?;
        let known = stored.is_some();
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Verify {
            password: password.clone(),
            phc: stored.unwrap_or(&self.dummy_hash).to_owned(),
            reply,
        })?;
        let ok = answer.await.map_err(Error::internal)?;
        Ok(ok && known)
    }

    fn submit(&self, job: Job) -> Result<()> {
        self.jobs
            .send(job)
            .map_err(|_| Error::internal("argon2 workers stopped"))
    }
}

/// A worker: take jobs until the hasher is dropped, always with the same memory block.
fn work(jobs: &Mutex<mpsc::Receiver<Job>>, params: &Params) {
    let mut memory = vec![Block::new(); params.block_count()];
    loop {
        let job = {
            let rx = match jobs.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            match rx.recv() {
                Ok(j) => j,
                Err(_) => return,
            }
        };
        match job {
            Job::Hash { password, reply } => {
                let _ = reply.send(hash_with(params, password.expose().as_bytes(), &mut memory));
            }
            Job::Verify {
                password,
                phc,
                reply,
            } => {
                let _ = reply.send(verify_with(password.expose().as_bytes(), &phc, &mut memory));
            }
        }
    }
}

/// argon2id of `password` with a fresh 128-bit salt, as a PHC string.
fn hash_with(params: &Params, password: &[u8], memory: &mut [Block]) -> Result<String> {
    let internal = |e: &dyn std::fmt::Display| Error::internal(format!("argon2: {e}"));
    let salt = random_bytes::<16>();
    let mut out = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, &salt, &mut out, memory)
        .map_err(|e| internal(&e))?;
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| internal(&e))?,
        salt: Some(Salt::new(&salt).map_err(|e| internal(&e))?),
        hash: Some(Output::new(&out).map_err(|e| internal(&e))?),
    };
    Ok(phc.to_string())
}

/// Does `password` match the PHC string? Its own parameters apply (hashes made before a
/// parameter change still verify); a hash needing more memory than the worker owns gets a
/// one-off block.
fn verify_with(password: &[u8], phc: &str, memory: &mut [Block]) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Ok(alg), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(hash.algorithm.as_str()),
        Params::try_from(&hash),
        hash.salt.as_ref(),
        hash.hash.as_ref(),
    ) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from) {
        None => Version::V0x13,
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let needed = params.block_count();
    let argon = Argon2::new(alg, version, params);
    let mut out = vec![0u8; expected.as_bytes().len()];
    let computed = if needed <= memory.len() {
        argon.hash_password_into_with_memory(password, salt, &mut out, &mut memory[..needed])
    } else {
        tracing::warn!(
            needed_kib = needed,
            "a stored hash needs more memory than a worker owns"
        );
        argon.hash_password_into(password, salt, &mut out)
    };
    computed.is_ok() && ct_eq(&out, expected.as_bytes())
}

/// Check a new password against the policy; the error text is meant for the person choosing it.
pub fn check_policy(policy: &PasswordPolicyConfig, username: &str, password: &str) -> Result<()> {
    let len = password.chars().count();
    if len < policy.min_length {
        return Err(Error::Invalid(format!(
            "password is too short: use at least {} characters (a passphrase of several words \
             works well)",
            policy.min_length
        )));
    }
    if len > policy.max_length {
        return Err(Error::Invalid(format!(
            "password is too long: at most {} characters",
            policy.max_length
        )));
    }
    if password.chars().any(char::is_control) {
        return Err(Error::Invalid(
            "password must not contain control characters".into(),
        ));
    }
    let lower = password.to_lowercase();
    if BLOCKLIST
        .lines()
        .map(str::trim)
        .any(|w| !w.is_empty() && w == lower)
    {
        return Err(Error::Invalid(
            "password is on the list of commonly used passwords; choose another".into(),
        ));
    }
    if !username.is_empty() && lower.contains(&username.to_lowercase()) {
        return Err(Error::Invalid(
            "password must not contain the username".into(),
        ));
    }
    let first = lower.chars().next().unwrap_or_default();
    if lower.chars().all(|c| c == first) {
        return Err(Error::Invalid(
            "password must not be one repeated character".into(),
        ));
    }
    let bytes = lower.as_bytes();
    let sequential = bytes.windows(2).all(|w| w[1] == w[0].wrapping_add(1))
        || bytes.windows(2).all(|w| w[1].wrapping_add(1) == w[0]);
    if sequential {
        return Err(Error::Invalid(
            "password must not be a simple sequence".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PasswordPolicyConfig {
        PasswordPolicyConfig {
            min_length: 8,
            max_length: 64,
        }
    }

    #[test]
    fn policy_rules() {
        let p = policy();
        assert!(check_policy(&p, "alice", "correct horse battery").is_ok());
        assert!(check_policy(&p, "alice", "short").is_err());
        assert!(check_policy(&p, "alice", &"x".repeat(65)).is_err());
        assert!(
            check_policy(&p, "alice", "Password123").is_err(),
            "blocklisted"
        );
        assert!(
            check_policy(&p, "alice", "xx-Alice-2024-xx").is_err(),
            "contains username"
        );
        assert!(check_policy(&p, "alice", "aaaaaaaaaa").is_err());
        assert!(check_policy(&p, "alice", "abcdefghij").is_err());
        assert!(check_policy(&p, "alice", "tab\there-is-bad").is_err());
        // Unicode counts characters, not bytes.
        assert!(check_policy(&p, "bob", "ééééééé").is_err());
        assert!(check_policy(&p, "bob", "ñandú-río-grande").is_ok());
    }

    fn small(workers: usize, queue: usize) -> Argon2Config {
        Argon2Config {
            m_cost: 64,
            t_cost: 1,
            p_cost: 1,
            workers,
            queue,
        }
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let h = PasswordHasher::new(&small(2, 4)).unwrap();
        let pw = |s: &str| Password::new(s);
        let hash = h.hash(&pw("correct horse")).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
        assert!(h.verify(&pw("correct horse"), Some(&hash)).await.unwrap());
        assert!(!h.verify(&pw("wrong horse"), Some(&hash)).await.unwrap());
        assert!(!h.verify(&pw("correct horse"), None).await.unwrap());
        assert!(!h.verify(&pw("x"), Some("not a phc string")).await.unwrap());
        // Hashes made by the argon2 crate's own encoder (and with other parameters) verify.
        use argon2::password_hash::PasswordHasher as _;
        let theirs = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(128, 2, 1, None).unwrap(),
        )
        .hash_password(b"correct horse")
        .unwrap()
        .to_string();
        assert!(h.verify(&pw("correct horse"), Some(&theirs)).await.unwrap());
        assert!(!h.verify(&pw("correct hors"), Some(&theirs)).await.unwrap());
    }

    /// A full queue sheds instead of waiting (issue 11, item 4).
    #[tokio::test]
    async fn a_full_queue_sheds_verifications() {
        let h = PasswordHasher::new(&Argon2Config {
            m_cost: 4 * 1024,
            t_cost: 64,
            p_cost: 1,
            workers: 1,
            queue: 0,
        })
        .unwrap();
        let hash = h.hash(&Password::new("pw")).await.unwrap();
        assert_eq!(h.waiting(), 0);
        let busy = {
            let (h, hash) = (h.clone(), hash.clone());
            tokio::spawn(async move { h.verify(&Password::new("pw"), Some(&hash)).await })
        };
        while h.waiting() == 0 {
            tokio::task::yield_now().await;
        }
        // The only worker is busy and there is no queue: shed at once, with a retry hint.
        match h.verify(&Password::new("pw"), Some(&hash)).await {
            Err(Error::Overloaded { retry_after }) => assert!(retry_after >= 1),
            other => panic!("expected Overloaded, got {other:?}"),
        }
        assert!(busy.await.unwrap().unwrap(), "the admitted one completes");
        assert_eq!(h.waiting(), 0);
        assert!(h.verify(&Password::new("pw"), Some(&hash)).await.unwrap());
    }
}
