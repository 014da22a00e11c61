//! The client's one error type: what went wrong, in terms a caller can act on.

/// Every failure of the client library.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No usable credentials: sign in (again).
    #[error("authentication needed: {0}")]
    AuthRequired(String),
    /// The token lacks a scope; `scope` is what the server asked for.
    #[error("forbidden: this needs the {scope} scope ({message})")]
    Forbidden { scope: String, message: String },
    /// Sign-in was refused (wrong password, revoked key, …), with the server's explanation.
    #[error("sign-in refused: {0}")]
    SignIn(String),
    /// The tool ran and reported an error.
    #[error("tool error: {0}")]
    Tool(String),
    /// Network or HTTP trouble; the underlying error is kept as the `source`.
    #[error("transport: {message}")]
    Transport {
        message: String,
        #[source]
        source: Option<BoxError>,
    },
    /// The remembered-token file could not be written.
    #[error("token file {path}: {source}")]
    TokenFile {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The server said something that does not follow the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
}

/// An underlying error kept as a source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl ClientError {
    /// Transport trouble caused by `e`.
    pub fn transport(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Transport {
            message: e.to_string(),
            source: Some(Box::new(e)),
        }
    }
}

impl From<reqwest::Error> for ClientError {
    fn from(e: reqwest::Error) -> Self {
        Self::transport(e)
    }
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Parse `Bearer k="v", …` (RFC 6750 §3) into pairs.
pub fn challenge_params(header: &str) -> std::collections::BTreeMap<String, String> {
    let rest = header
        .trim()
        .strip_prefix("Bearer")
        .unwrap_or(header)
        .trim();
    let mut out = std::collections::BTreeMap::new();
    let mut s = rest;
    while let Some(eq) = s.find('=') {
        let key = s[..eq].trim().trim_start_matches(',').trim().to_owned();
        let after = &s[eq + 1..];
        let (value, rest) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        out.insert(key, value.to_owned());
        s = rest;
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_challenges() {
        let p = super::challenge_params(
            r#"Bearer error="insufficient_scope", scope="notes:read notes:write", resource_metadata="http://x/.well-known/oauth-protected-resource/mcp""#,
        );
        assert_eq!(p["error"], "insufficient_scope");
        assert_eq!(p["scope"], "notes:read notes:write");
        assert!(p["resource_metadata"].ends_with("/mcp"));
    }
}
