//! Tokens the client holds: in memory, or in a file with mode 0600 when asked to remember.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use shared::secret::{AccessToken, ClientSecret, RefreshToken};

use crate::error::{ClientError, Result};

/// How the current tokens were obtained (decides how to refresh and step up).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum SignInMethod {
    Password,
    Browser,
    /// The device authorization grant (RFC 8628), `login-device`.
    Device,
    ApiKey {
        key_id: String,
        key_secret: ClientSecret,
    },
}

/// A token set; the tokens redact themselves in `Debug` and serialize as plain strings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tokens {
    pub access_token: AccessToken,
    pub refresh_token: Option<RefreshToken>,
    /// Unix seconds.
    pub expires_at: i64,
    pub scope: String,
    pub client_id: String,
    pub method: SignInMethod,
    /// The access token is DPoP-bound (`token_type: DPoP`, RFC 9449 §5).
    #[serde(default)]
    pub dpop_bound: bool,
    /// The DPoP key of this session (base64url PKCS#8; secret like the tokens, kept in the
    /// same 0600 file) when signed in with `--dpop`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_key: Option<crate::dpop::StoredKey>,
}

/// Where remembered tokens live: `$MCP_AUTH_CLIENT_TOKENS`, else
/// `$XDG_CONFIG_HOME/mcp-auth-client/tokens.json` (or `~/.config/…`).
pub fn default_path() -> PathBuf {
    if let Some(p) = std::env::var_os("MCP_AUTH_CLIENT_TOKENS") {
        return PathBuf::from(p);
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("mcp-auth-client").join("tokens.json")
}

/// Write with mode 0600 (created so, never widened afterwards).
pub fn save(path: &Path, tokens: &Tokens) -> Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| ClientError::TokenFile {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let file_error = |source| ClientError::TokenFile {
        path: path.display().to_string(),
        source,
    };
    let mut f = opts.open(path).map_err(file_error)?;
    let json = serde_json::to_vec(tokens).map_err(|e| ClientError::Protocol(e.to_string()))?;
    f.write_all(&json).map_err(file_error)
}

pub fn load(path: &Path) -> Option<Tokens> {
    let text = std::fs::read(path).ok()?;
    serde_json::from_slice(&text).ok()
}

pub fn forget(path: &Path) {
    let _ = std::fs::remove_file(path);
}
