//! The one rule for registering a redirect URI (RFC 6749 §3.1.2, RFC 9700 §2.1, RFC 8252 §7),
//! used by dynamic registration (RFC 7591), the CLI and the seed alike, for `redirect_uris` and
//! `post_logout_redirect_uris`.
//!
//! A registered URI is compared byte-for-byte at `/authorize`, so it must be exactly what a
//! URL parser would make of it: no control characters or whitespace anywhere (the `url` crate
//! silently drops tab, CR and LF, so `"https://a/cb\nhttp://evil/cb"` would parse as one URI
//! while carrying another), and the parsed URL must serialise back to the very same string.

/// Which registrations a URI comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registrant {
    /// An administrator (CLI, seed): https, http on loopback, or a private-use scheme with a
    /// dot (RFC 8252 §7.1, e.g. `com.example.app:/callback`).
    Admin,
    /// The client itself (RFC 7591): https, or http on loopback only.
    SelfRegistered,
}

const MAX_URI_BYTES: usize = 2000;

/// Check one URI; the message says what is wrong (for the person or client registering it).
pub fn validate(uri: &str, who: Registrant) -> Result<(), String> {
    if uri.is_empty() {
        return Err("a redirect URI must not be empty".to_owned());
    }
    if uri.len() > MAX_URI_BYTES {
        return Err(format!("redirect URIs are at most {MAX_URI_BYTES} bytes"));
    }
    if uri.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "{} must not contain control characters or whitespace",
            shown(uri)
        ));
    }
    let url =
        url::Url::parse(uri).map_err(|e| format!("{} is not an absolute URI: {e}", shown(uri)))?;
    if url.as_str() != uri {
        return Err(format!(
            "{} is not in canonical form; register {:?}",
            shown(uri),
            url.as_str()
        ));
    }
    if url.fragment().is_some() {
        return Err(format!("{} must not contain a fragment", shown(uri)));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("{} must not contain credentials", shown(uri)));
    }
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"));
    match (url.scheme(), who) {
        ("https", _) => Ok(()),
        ("http", _) if loopback => Ok(()),
        ("http", _) => Err(format!(
            "{}: http is allowed on loopback only; use https",
            shown(uri)
        )),
        // Private-use schemes for native apps (RFC 8252 §7.1) must contain a dot.
        (s, Registrant::Admin) if s.contains('.') => Ok(()),
        (_, Registrant::SelfRegistered) => Err(format!(
            "{}: redirect URIs must be https, or http on a loopback address",
            shown(uri)
        )),
        _ => Err(format!("{} has an unsupported scheme", shown(uri))),
    }
}

/// The URI for a message: quoted and escaped, cut short if long.
fn shown(uri: &str) -> String {
    let short: String = uri.chars().take(200).collect();
    format!("{short:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 11, item 3): `"https://a.example/cb\nhttp://evil.example/cb"` was
    /// accepted (the `url` crate drops `\n` while parsing) and read back as two URIs.
    #[test]
    fn control_characters_and_non_canonical_forms_are_refused() {
        for who in [Registrant::Admin, Registrant::SelfRegistered] {
            for bad in [
                "https://a.example/cb\nhttp://evil.example/cb",
                "https://a.example/cb\r\n",
                "https://a.exa\tmple/cb",
                "https://a.example/c b",
                " https://a.example/cb",
                "https://a.example/cb\u{0}",
                "https://a.example/cb\u{85}",
                "https://a.example/cb\u{2028}",
                "https://A.example/cb",
                "https://a.example:443/cb",
                "https://a.example",
                "https://a.example/./cb",
                "https://a.example/cb#frag",
                "https://user:pw@a.example/cb",
                "http://a.example/cb",
                "javascript:alert(1)",
                "",
            ] {
                assert!(validate(bad, who).is_err(), "{bad:?} accepted for {who:?}");
            }
            for good in [
                "https://a.example/cb",
                "https://a.example/cb?x=1",
                "http://127.0.0.1/callback",
                "http://127.0.0.1:8080/callback",
                "http://[::1]:9/cb",
                "http://localhost:3000/cb",
            ] {
                assert!(validate(good, who).is_ok(), "{good:?} refused for {who:?}");
            }
        }
        assert!(validate("com.example.app:/callback", Registrant::Admin).is_ok());
        assert!(validate("com.example.app:/callback", Registrant::SelfRegistered).is_err());
    }
}
