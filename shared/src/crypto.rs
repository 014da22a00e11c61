//! Small cryptographic helpers built on aws-lc-rs (the one crypto backend of the server):
//! random identifiers and secrets, SHA-256 token hashes, constant-time comparison and the
//! AES-256-GCM master key that encrypts signing keys at rest.

use std::path::Path;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// `n` random bytes from the OS CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // SystemRandom only fails if the OS has no entropy source; nothing sane can continue then.
    SystemRandom::new()
        .fill(&mut buf)
        .expect("operating system random source failed");
    buf
}

/// A 256-bit random secret, base64url without padding (43 characters).
pub fn random_secret() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// A 128-bit random identifier, base64url (22 characters), optionally prefixed.
pub fn random_id(prefix: &str) -> String {
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(random_bytes::<16>()))
}

/// Lower-case hex SHA-256 of a secret: how server-generated secrets are stored and looked up.
pub fn sha256_hex(value: &str) -> String {
    let d = digest::digest(&digest::SHA256, value.as_bytes());
    let mut s = String::with_capacity(64);
    for b in d.as_ref() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// base64url without padding of SHA-256: a PKCE S256 challenge (RFC 7636 §4.2), a DPoP `ath`.
pub fn s256(value: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, value.as_bytes()).as_ref())
}

/// Constant-time equality of two byte strings (lengths are not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// The key-encryption key for private keys at rest (AES-256-GCM).
pub struct MasterKey {
    aead: LessSafeKey,
    /// HMAC-SHA256 key derived from the master key (for CSRF tokens and similar MACs).
    mac: aws_lc_rs::hmac::Key,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

/// Why the master key could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("master key must be base64 of exactly 32 bytes")]
    BadEncoding,
    #[error("master key file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("master key file {0} is readable by other users; chmod 600 it")]
    Permissions(String),
    #[error("decryption failed: wrong master key or corrupted data")]
    Decrypt,
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        // 32 bytes is exactly AES-256's key size, so this cannot fail.
        let key = UnboundKey::new(&AES_256_GCM, bytes).expect("32-byte AES-256 key");
        // A separate key for MACs: HMAC(master, "authz mac key v1"), so the AES key is never
        // used for two purposes.
        let derive = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, bytes);
        let mac_bytes = aws_lc_rs::hmac::sign(&derive, b"authz mac key v1");
        Self {
            aead: LessSafeKey::new(key),
            mac: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, mac_bytes.as_ref()),
        }
    }

    /// Decode base64 (standard or URL-safe, padding optional) of 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self, MasterKeyError> {
        let text = text.trim().trim_end_matches('=');
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
            .map_err(|_| MasterKeyError::BadEncoding)?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| MasterKeyError::BadEncoding)?;
        Ok(Self::from_bytes(&arr))
    }

    /// Load `path`, creating it with mode 0600 and a fresh random key when it does not exist.
    pub fn load_or_create_file(path: &Path) -> Result<Self, MasterKeyError> {
        let io = |source| MasterKeyError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                check_private(path)?;
                Self::from_base64(&text)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(io)?;
                }
                let key = random_bytes::<32>();
                write_private(path, format!("{}\n", STANDARD.encode(key)).as_bytes())
                    .map_err(io)?;
                Ok(Self::from_bytes(&key))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// Encrypt; `aad` binds the ciphertext to its context (e.g. the key id). Output: nonce‖ct‖tag.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let nonce_bytes = random_bytes::<NONCE_LEN>();
        let mut buf = plaintext.to_vec();
        self.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(aad),
                &mut buf,
            )
            .expect("AES-GCM seal of an in-memory buffer");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buf);
        out
    }

    /// HMAC-SHA256 of `msg` under the derived MAC key, with a domain-separating `label`.
    pub fn mac(&self, label: &str, msg: &[u8]) -> [u8; 32] {
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&self.mac);
        ctx.update(label.as_bytes());
        ctx.update(&[0]);
        ctx.update(msg);
        let tag = ctx.sign();
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, MasterKeyError> {
        if sealed.len() < NONCE_LEN + 16 {
            return Err(MasterKeyError::Decrypt);
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| MasterKeyError::Decrypt)?;
        let mut buf = ct.to_vec();
        let plain = self
            .aead
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .map_err(|_| MasterKeyError::Decrypt)?;
        Ok(plain.to_vec())
    }
}

#[cfg(unix)]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, data)
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), MasterKeyError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| MasterKeyError::Io {
        path: path.display().to_string(),
        source,
    })?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(MasterKeyError::Permissions(path.display().to_string()));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &Path) -> Result<(), MasterKeyError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_roundtrip_and_aad_binding() {
        let k = MasterKey::from_bytes(&[7u8; 32]);
        let sealed = k.seal(b"kid-1", b"private key");
        assert_eq!(k.open(b"kid-1", &sealed).unwrap(), b"private key");
        assert!(k.open(b"kid-2", &sealed).is_err());
        let other = MasterKey::from_bytes(&[8u8; 32]);
        assert!(other.open(b"kid-1", &sealed).is_err());
        let mut tampered = sealed.clone();
        tampered[NONCE_LEN] ^= 1;
        assert!(k.open(b"kid-1", &tampered).is_err());
    }

    #[test]
    fn key_file_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/master.key");
        let a = MasterKey::load_or_create_file(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let b = MasterKey::load_or_create_file(&path).unwrap();
        let sealed = a.seal(b"x", b"y");
        assert_eq!(b.open(b"x", &sealed).unwrap(), b"y");
    }

    #[test]
    fn master_key_encodings() {
        assert!(MasterKey::from_base64(&STANDARD.encode([1u8; 32])).is_ok());
        assert!(MasterKey::from_base64(&URL_SAFE_NO_PAD.encode([250u8; 32])).is_ok());
        assert!(MasterKey::from_base64(&STANDARD.encode([1u8; 31])).is_err());
        assert!(MasterKey::from_base64("not base64!").is_err());
    }

    #[test]
    fn hashing_and_compare() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert_eq!(random_secret().len(), 43);
        assert_ne!(random_secret(), random_secret());
    }
}
