//! Connections to the directory: TLS from the first byte (`ldaps://`) or after StartTLS (RFC
//! 4511 §4.14, RFC 4513 §3), verified against the configured CA file or the system's roots with
//! rustls; a bounded pool (`pool_size` at most in use, the idle ones kept); a timeout on the
//! connection and on every operation. A connection that failed in any way is dropped, never
//! put back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry, SearchOptions};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::config::ldap::LdapConfig;

/// The directory could not be asked (the cause, for the log).
#[derive(Debug)]
pub struct Unavailable(pub String);

impl<E: std::fmt::Display> From<E> for Unavailable {
    fn from(e: E) -> Self {
        Self(e.to_string())
    }
}

type Attempt<T> = Result<T, Unavailable>;

/// The result codes a bind is told (RFC 4511 §4.1.9, Appendix A).
const SUCCESS: u32 = 0;
const SIZE_LIMIT_EXCEEDED: u32 = 4;
const NO_SUCH_OBJECT: u32 = 32;
const INVALID_CREDENTIALS: u32 = 49;

pub struct Pool {
    url: String,
    settings: LdapConnSettings,
    op_timeout: Duration,
    connect_timeout: Duration,
    idle: Mutex<Vec<ldap3::Ldap>>,
    permits: Semaphore,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// The rustls configuration: the CA file's certificates, or the system's roots.
fn tls_config(cfg: &LdapConfig) -> Result<Arc<rustls::ClientConfig>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    match &cfg.ca_file {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("[ldap] ca_file {}: {e}", path.display()))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("[ldap] ca_file {}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("[ldap] ca_file {}: {e}", path.display()))?;
            }
        }
        None => {
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    if roots.is_empty() {
        return Err("[ldap]: no CA certificate to verify the directory with (set ca_file)".into());
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

impl Pool {
    pub fn new(cfg: &LdapConfig) -> Result<Self, String> {
        let url = cfg.url.clone().unwrap_or_default();
        let plain = url.starts_with("ldap://") && !cfg.starttls;
        let connect_timeout = Duration::from_secs(cfg.connect_timeout_secs);
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(connect_timeout)
            .set_starttls(url.starts_with("ldap://") && cfg.starttls);
        if !plain {
            settings = settings.set_config(tls_config(cfg)?);
        }
        Ok(Self {
            url,
            settings,
            op_timeout: Duration::from_secs(cfg.timeout_secs),
            connect_timeout,
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(cfg.pool_size),
        })
    }

    /// A connection (idle, or new), waiting at most the operation timeout for a free one.
    pub async fn get(&self) -> Attempt<Conn<'_>> {
        let permit = tokio::time::timeout(self.op_timeout, self.permits.acquire())
            .await
            .map_err(|_| Unavailable("every directory connection is busy".into()))??;
        let idle = loop {
            match self.idle.lock().map(|mut v| v.pop()).unwrap_or_default() {
                Some(mut l) => {
                    if !l.is_closed() {
                        break Some(l);
                    }
                }
                None => break None,
            }
        };
        let ldap = match idle {
            Some(l) => l,
            None => {
                let connect = LdapConnAsync::with_settings(self.settings.clone(), &self.url);
                let (conn, ldap) = tokio::time::timeout(self.connect_timeout, connect)
                    .await
                    .map_err(|_| Unavailable("connecting to the directory timed out".into()))??;
                ldap3::drive!(conn);
                ldap
            }
        };
        Ok(Conn {
            pool: self,
            ldap: Some(ldap),
            healthy: false,
            _permit: permit,
        })
    }
}

/// A connection in use; back to the pool when dropped after `done`, closed otherwise.
pub struct Conn<'a> {
    pool: &'a Pool,
    ldap: Option<ldap3::Ldap>,
    healthy: bool,
    _permit: SemaphorePermit<'a>,
}

/// The password policy response control's OID.
const PASSWORD_POLICY: &str = "1.3.6.1.4.1.42.2.27.8.5.1";

/// How the directory answered the person's bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserBind {
    Accepted,
    Refused,
    /// Accepted only to change a password an administrator reset.
    MustChange,
}

/// The `error` of a PasswordPolicyResponseValue (`SEQUENCE { warning [0] OPTIONAL,
/// error [1] ENUMERATED OPTIONAL }`, BER): its value, if present.
fn policy_error(value: &[u8]) -> Option<u8> {
    let (tag, body, _) = tlv(value)?;
    if tag != 0x30 {
        return None;
    }
    let mut rest = body;
    while !rest.is_empty() {
        let (tag, inner, next) = tlv(rest)?;
        if tag == 0x81 && inner.len() == 1 {
            return Some(inner[0]);
        }
        rest = next;
    }
    None
}

/// One BER element of `data`: its tag, its contents, what follows (definite lengths only).
fn tlv(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 2 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |a, b| (a << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// What a search found.
pub enum Found {
    None,
    One(Box<SearchEntry>),
    /// More than one entry: the filter does not name one person.
    Many,
}

impl Conn<'_> {
    fn ldap(&mut self) -> &mut ldap3::Ldap {
        self.ldap.as_mut().expect("held until dropped")
    }

    async fn timed<T, F>(&self, f: F) -> Attempt<T>
    where
        F: std::future::Future<Output = Result<T, ldap3::LdapError>>,
    {
        tokio::time::timeout(self.pool.op_timeout, f)
            .await
            .map_err(|_| Unavailable("the directory did not answer in time".into()))?
            .map_err(Unavailable::from)
    }

    /// A simple bind (RFC 4513 §5.1.3): `Ok(true)` accepted, `Ok(false)` refused (wrong
    /// credentials, or any other refusal of the bind). Never called with an empty password
    /// (that would be an unauthenticated bind, §5.1.2), except for the anonymous service.
    pub async fn bind(&mut self, dn: &str, password: &str) -> Attempt<bool> {
        let mut ldap = self.ldap().clone();
        let res = self
            .timed(async move { ldap.simple_bind(dn, password).await })
            .await?;
        match res.rc {
            SUCCESS => Ok(true),
            INVALID_CREDENTIALS => Ok(false),
            rc => {
                tracing::info!(rc, text = %res.text, "directory bind refused");
                Ok(false)
            }
        }
    }

    /// The person's own bind, asking for the password policy's answer (the control of
    /// draft-behera-ldap-password-policy §6, which OpenLDAP's ppolicy gives): accepted, refused,
    /// or accepted only to change a password an administrator reset.
    pub async fn bind_as_user(&mut self, dn: &str, password: &str) -> Attempt<UserBind> {
        let mut ldap = self.ldap().clone();
        let res = self
            .timed(async move {
                ldap.with_controls(vec![ldap3::controls::RawControl {
                    ctype: PASSWORD_POLICY.to_owned(),
                    crit: false,
                    val: None,
                }])
                .simple_bind(dn, password)
                .await
            })
            .await?;
        if res.rc != SUCCESS {
            if res.rc != INVALID_CREDENTIALS {
                tracing::info!(rc = res.rc, text = %res.text, "directory bind refused");
            }
            return Ok(UserBind::Refused);
        }
        let policy_error = res
            .ctrls
            .iter()
            .find(|c| c.1.ctype == PASSWORD_POLICY)
            .and_then(|c| c.1.val.as_deref())
            .and_then(policy_error);
        Ok(match policy_error {
            // changeAfterReset
            Some(2) => UserBind::MustChange,
            // passwordExpired, accountLocked: a directory that still said yes
            Some(0 | 1) => UserBind::Refused,
            _ => UserBind::Accepted,
        })
    }

    /// A search under `base` for at most one entry, with `attrs`.
    pub async fn search_one(
        &mut self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Attempt<Found> {
        let mut ldap = self.ldap().clone();
        let search = async move {
            ldap.with_search_options(SearchOptions::new().sizelimit(2))
                .search(base, scope, filter, attrs.to_vec())
                .await
        };
        let ldap3::SearchResult(entries, res) = self.timed(search).await?;
        let entries: Vec<_> = entries.into_iter().filter(|e| !e.is_ref()).collect();
        match res.rc {
            SUCCESS | SIZE_LIMIT_EXCEEDED | NO_SUCH_OBJECT => {}
            rc => return Err(Unavailable(format!("search failed: {rc} {}", res.text))),
        }
        Ok(match entries.len() {
            0 => Found::None,
            1 if res.rc != SIZE_LIMIT_EXCEEDED => Found::One(Box::new(SearchEntry::construct(
                entries.into_iter().next().expect("one"),
            ))),
            _ => Found::Many,
        })
    }

    /// The DNs of the entries under `base` matching `filter` (groups), at most 1000.
    pub async fn search_dns(&mut self, base: &str, filter: &str) -> Attempt<Vec<String>> {
        let mut ldap = self.ldap().clone();
        let search = async move {
            ldap.with_search_options(SearchOptions::new().sizelimit(1000))
                .search(base, Scope::Subtree, filter, vec!["1.1"])
                .await
        };
        let ldap3::SearchResult(entries, res) = self.timed(search).await?;
        match res.rc {
            SUCCESS | SIZE_LIMIT_EXCEEDED | NO_SUCH_OBJECT => {}
            rc => {
                return Err(Unavailable(format!(
                    "group search failed: {rc} {}",
                    res.text
                )));
            }
        }
        Ok(entries
            .into_iter()
            .filter(|e| !e.is_ref())
            .map(|e| SearchEntry::construct(e).dn)
            .collect())
    }

    /// Keep this connection for the next sign-in.
    pub fn done(mut self) {
        self.healthy = true;
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if let Some(ldap) = self.ldap.take()
            && self.healthy
            && let Ok(mut idle) = self.pool.idle.lock()
        {
            idle.push(ldap);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_policy_error_is_read_and_a_warning_is_not_taken_for_it() {
        // error: changeAfterReset
        assert_eq!(policy_error(&[0x30, 0x03, 0x81, 0x01, 0x02]), Some(2));
        // warning graceAuthNsRemaining [1] = 2 inside [0], no error
        assert_eq!(
            policy_error(&[0x30, 0x05, 0xa0, 0x03, 0x81, 0x01, 0x02]),
            None
        );
        // both
        assert_eq!(
            policy_error(&[0x30, 0x08, 0xa0, 0x03, 0x80, 0x01, 0x05, 0x81, 0x01, 0x00]),
            Some(0)
        );
        assert_eq!(policy_error(&[0x30, 0x00]), None);
        assert_eq!(policy_error(&[0x30, 0x05, 0x81]), None);
        assert_eq!(policy_error(&[]), None);
    }
}
