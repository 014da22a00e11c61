//! `Origin` validation on the MCP endpoint (MCP Streamable HTTP transport: servers MUST validate
//! the `Origin` header to prevent DNS-rebinding attacks). It runs before anything else, token
//! or no token:
//!
//! - no `Origin` header (non-browser clients): allowed;
//! - an `Origin` equal to this server's own origin (the resource URL's), to a loopback origin on
//!   any port (`http(s)://localhost`, `127.0.0.1`, `[::1]`: local tools such as MCP Inspector),
//!   or to an entry of `MCP_ALLOWED_ORIGINS` (`scheme://host[:port]`, `:*` for any port):
//!   allowed;
//! - anything else, including `Origin: null` and malformed values: 403 with a JSON-RPC error
//!   (`auth::check_origin`, the middleware).
//!
//! The same policy decides who gets a CORS grant (`cors`, outermost on the MCP endpoint), so a
//! browser client that the Origin check admits can also read the answers, 401 challenges
//! included, and one it refuses gets none.
//!
//! A leaf: the configuration validates the policy and the state holds it, neither imported here.

use axum::http::{HeaderName, Method};
use shared::cors::{Cors, Origins};

/// A `(scheme, host, port)` triple; `port: None` in an allow-list entry means any port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tuple {
    scheme: String,
    host: String,
    port: Option<u16>,
}

/// Parse an origin (`scheme://host[:port]`, nothing else: RFC 6454 §7). `None` for `null`,
/// paths, credentials or anything unparsable.
fn parse(value: &str) -> Option<Tuple> {
    let url = url::Url::parse(value.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || url.path() != "/"
        || value.trim().ends_with('/')
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return None;
    }
    Some(Tuple {
        scheme: url.scheme().to_owned(),
        host: url.host_str()?.to_ascii_lowercase(),
        port: url.port_or_known_default(),
    })
}

/// The MCP transport's request headers a browser client sends beyond the safelisted ones.
const MCP_REQUEST_HEADERS: [&str; 7] = [
    "authorization",
    "content-type",
    "mcp-protocol-version",
    "mcp-session-id",
    "mcp-method",
    "mcp-name",
    "last-event-id",
];

/// The response headers a browser client must be able to read: the 401/403 challenge (or it
/// can never start discovery) and the session and protocol headers.
const MCP_EXPOSED_HEADERS: [&str; 3] =
    ["www-authenticate", "mcp-session-id", "mcp-protocol-version"];

/// CORS for browser-based MCP clients (MCP Inspector): `origins` may call `methods` with the
/// MCP headers and read the challenge (`shared::cors`: preflights get 204 before any auth).
pub fn cors(origins: Origins, methods: &[Method]) -> Cors {
    let names = |list: &[&'static str]| -> Vec<HeaderName> {
        list.iter().map(|h| HeaderName::from_static(h)).collect()
    };
    Cors::new(origins, methods)
        .allow_headers(&names(&MCP_REQUEST_HEADERS))
        .expose_headers(&names(&MCP_EXPOSED_HEADERS))
}

/// Which browser origins may call the MCP endpoint.
#[derive(Debug, Clone)]
pub struct OriginPolicy {
    allowed: Vec<Tuple>,
}

impl OriginPolicy {
    /// The configured origins plus this server's own (from `resource_url`).
    pub fn new(resource_url: &str, configured: &[String]) -> Result<Self, String> {
        let mut allowed = Vec::new();
        for raw in configured {
            let (base, any_port) = match raw.trim().strip_suffix(":*") {
                Some(b) => (b, true),
                None => (raw.trim(), false),
            };
            let mut t = parse(base).ok_or_else(|| {
                format!("MCP_ALLOWED_ORIGINS entry {raw:?} is not an origin (scheme://host[:port])")
            })?;
            if any_port {
                t.port = None;
            }
            allowed.push(t);
        }
        let own = url::Url::parse(resource_url).map_err(|e| e.to_string())?;
        if let Some(t) = parse(&own.origin().ascii_serialization()) {
            allowed.push(t);
        }
        Ok(Self { allowed })
    }

    /// This policy as the origins that get a CORS grant: exactly those the Origin check lets
    /// through.
    pub fn cors_origins(&self) -> Origins {
        let policy = self.clone();
        Origins::Predicate(std::sync::Arc::new(move |o| policy.allows(o)))
    }

    pub fn allows(&self, origin: &str) -> bool {
        let Some(o) = parse(origin) else {
            return false;
        };
        if matches!(o.host.as_str(), "localhost" | "127.0.0.1" | "[::1]") {
            return true;
        }
        self.allowed.iter().any(|a| {
            a.scheme == o.scheme && a.host == o.host && (a.port.is_none() || a.port == o.port)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_loopback_and_configured_origins_only() {
        let p = OriginPolicy::new(
            "https://mcp.example.com/mcp",
            &[
                "https://app.example.org".into(),
                "http://tools.internal:*".into(),
            ],
        )
        .unwrap();
        for ok in [
            "https://mcp.example.com",
            "https://mcp.example.com:443",
            "https://app.example.org",
            "http://tools.internal:8000",
            "http://localhost:6274",
            "http://127.0.0.1:5173",
            "http://[::1]:3000",
            "https://localhost",
        ] {
            assert!(p.allows(ok), "{ok} refused");
        }
        for bad in [
            "http://evil.example",
            "null",
            "https://mcp.example.com.evil.example",
            "http://mcp.example.com",
            "https://mcp.example.com:8443",
            "https://app.example.org:444",
            "https://app.example.org/path",
            "https://user@app.example.org",
            "file://",
            "",
        ] {
            assert!(!p.allows(bad), "{bad:?} allowed");
        }
        assert!(OriginPolicy::new("https://m/mcp", &["not an origin".into()]).is_err());
    }
}
