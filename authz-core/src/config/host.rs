//! The one form in which a host name meets a host rule: the deny-list and allow-list of
//! metadata-document hosts, `AUTHZ_CIMD_ALLOWED_PRIVATE_HOSTS` (past the SSRF guard), the
//! per-host fetch budget, and the host shown and audited. Every rule compares
//! [`normalize`]d names on both sides (the configured entry and the URL's host), so
//! `https://EVIL.test./…` is `evil.test` to each of them.
//!
//! A name with one trailing dot is the same DNS name without it (an absolute name, RFC 1034
//! §3.1), and resolves to the same addresses: it is stripped. Anything that still has an empty
//! label at either end (`evil.test..`, `.evil.test`) is no host name and is refused.

/// `host` as every host rule compares it: ASCII lower case, one trailing dot removed; `None`
/// when that leaves no host name (empty, or an empty label at either end).
pub(crate) fn normalize(host: &str) -> Option<String> {
    let lower = host.to_ascii_lowercase();
    let bare = lower.strip_suffix('.').unwrap_or(&lower);
    if bare.is_empty() || bare.starts_with('.') || bare.ends_with('.') {
        return None;
    }
    Some(bare.to_owned())
}

/// The normalized host of `url`, or `None` (no host, or not a host name).
pub fn of_url(url: &url::Url) -> Option<String> {
    url.host_str().and_then(normalize)
}

/// A host pattern of the trust policy (`example.com`, or `*.example.com` for its
/// subdomains), normalized like a host; `None` for one that names nothing.
pub(crate) fn normalize_pattern(pattern: &str) -> Option<String> {
    match pattern.strip_prefix("*.") {
        Some(domain) => normalize(domain).map(|d| format!("*.{d}")),
        None => normalize(pattern),
    }
}

/// A `host[:port]` entry (`AUTHZ_CIMD_ALLOWED_PRIVATE_HOSTS`): its host normalized, its port
/// kept; `[v6]` and `[v6]:port` as written.
pub(crate) fn normalize_host_port(entry: &str) -> Option<String> {
    if entry.starts_with('[') {
        return Some(entry.to_ascii_lowercase());
    }
    match entry.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            normalize(host).map(|h| format!("{h}:{port}"))
        }
        _ => normalize(entry),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_trailing_dot_and_case_are_one_name() {
        assert_eq!(normalize("EVIL.test.").as_deref(), Some("evil.test"));
        assert_eq!(normalize("evil.test").as_deref(), Some("evil.test"));
        assert_eq!(normalize("127.0.0.1").as_deref(), Some("127.0.0.1"));
        assert_eq!(normalize("[::1]").as_deref(), Some("[::1]"));
        for bad in ["", ".", "evil.test..", ".evil.test", ".."] {
            assert_eq!(normalize(bad), None, "{bad:?}");
        }
        let url = url::Url::parse("https://App.Evil.Test./client.json").unwrap();
        assert_eq!(of_url(&url).as_deref(), Some("app.evil.test"));
    }

    #[test]
    fn patterns_and_host_port_entries() {
        assert_eq!(
            normalize_pattern("*.Evil.Test.").as_deref(),
            Some("*.evil.test")
        );
        assert_eq!(
            normalize_pattern("Evil.Test.").as_deref(),
            Some("evil.test")
        );
        assert_eq!(normalize_pattern("*."), None);
        assert_eq!(
            normalize_host_port("LocalHost.:8443").as_deref(),
            Some("localhost:8443")
        );
        assert_eq!(
            normalize_host_port("idp.internal.").as_deref(),
            Some("idp.internal")
        );
        assert_eq!(
            normalize_host_port("127.0.0.1:8443").as_deref(),
            Some("127.0.0.1:8443")
        );
        assert_eq!(
            normalize_host_port("[::1]:8443").as_deref(),
            Some("[::1]:8443")
        );
    }
}
