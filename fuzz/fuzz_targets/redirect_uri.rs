//! Redirect-URI matching (RFC 9700 §2.1, RFC 8252 §7.3): input "registered\nrequested".
//! A match is either the identical string or a loopback-IP URI differing only in the port;
//! nothing else may ever match. Registration-time validation never panics.
#![no_main]

use authz::oauth::authorize::redirect_uri_matches;
use libfuzzer_sys::fuzz_target;

fn strip_port(u: &str) -> Option<String> {
    let rest = u.strip_prefix("http://")?;
    let (host, tail) = if let Some(t) = rest.strip_prefix("127.0.0.1") {
        ("127.0.0.1", t)
    } else if let Some(t) = rest.strip_prefix("[::1]") {
        ("[::1]", t)
    } else {
        return None;
    };
    let tail = match tail.strip_prefix(':') {
        Some(p) => {
            let n = p.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 || n > 5 {
                return None;
            }
            &p[n..]
        }
        None => tail,
    };
    (tail.is_empty() || tail.starts_with('/') || tail.starts_with('?')).then(|| format!("{host}{tail}"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Some((registered, requested)) = text.split_once('\n') else { return };
    let _ = authz::account::admin::validate_redirect_uri(registered);
    let matched = redirect_uri_matches(&[registered.to_owned()], requested);
    if matched && registered != requested {
        let (a, b) = (strip_port(registered), strip_port(requested));
        assert!(a.is_some() && a == b, "{registered:?} matched {requested:?}");
    }
    if registered == requested {
        assert!(matched);
    }
});
