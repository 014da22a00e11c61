//! Resource indicators (RFC 8707): which audience a token is for.

pub(crate) use crate::config::types::validate_resource_uri;
use crate::error::{Error, Result};
use crate::store::Client;

/// The comparison form of a resource URI (MCP 2026-07-28, RFC 3986 §6.2.2–6.2.3): scheme and
/// host in lower case, the scheme's default port dropped, percent-encoding normalised by the
/// parser, and a trailing `/` of the path ignored (so an empty path and `/` are one, as are
/// `…/mcp` and `…/mcp/`). Query strings must match exactly. `None` for a non-URI.
pub fn canonical(value: &str) -> Option<String> {
    let url = url::Url::parse(value).ok()?;
    let mut out = format!("{}://{}", url.scheme(), url.host_str()?);
    if let Some(port) = url.port() {
        out.push_str(&format!(":{port}"));
    }
    out.push_str(url.path().trim_end_matches('/'));
    if let Some(q) = url.query() {
        out.push('?');
        out.push_str(q);
    }
    Some(out)
}

/// Do `a` and `b` name the same resource (their canonical forms are equal)?
pub(crate) fn same_resource(a: &str, b: &str) -> bool {
    match (canonical(a), canonical(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// Pick the token's audience: the one `resource` asked for, or the default. It is compared in
/// canonical form (`canonical`) with the client's allowed resources, and the token carries the
/// allowed resource as registered, so resource servers see one spelling only.
pub(crate) fn select_audience(
    requested: &[&str],
    allowed_for_grant: &[String],
    client: &Client,
    default: &str,
) -> Result<String> {
    let chosen = match requested {
        [] => default.to_owned(),
        [one] => {
            validate_resource_uri(one).map_err(Error::invalid_target)?;
            (*one).to_owned()
        }
        _ => {
            return Err(Error::invalid_target(
                "one resource per token: ask for each resource separately",
            ));
        }
    };
    let Some(registered) = client.resources.iter().find(|r| same_resource(r, &chosen)) else {
        return Err(Error::invalid_target(if requested.is_empty() {
            format!(
                "no resource given and the client may not use the default resource {chosen}; \
                 send the resource parameter"
            )
        } else {
            format!("the client may not request tokens for {chosen}")
        }));
    };
    let chosen = registered.clone();
    if !allowed_for_grant.is_empty() && !allowed_for_grant.iter().any(|r| same_resource(r, &chosen))
    {
        return Err(Error::invalid_target(format!(
            "the grant does not cover {chosen}"
        )));
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_resources() {
        let mcp = "https://mcp.example.com/mcp";
        for same in [
            "https://mcp.example.com/mcp",
            "https://mcp.example.com/mcp/",
            "HTTPS://MCP.Example.COM/mcp",
            "https://mcp.example.com:443/mcp",
        ] {
            assert!(same_resource(mcp, same), "{same}");
        }
        for other in [
            "https://mcp.example.com/MCP",
            "https://mcp.example.com:8443/mcp",
            "http://mcp.example.com/mcp",
            "https://mcp.example.com/mcp?x=1",
            "https://mcp.example.com/mcp2",
            "https://mcp.example.com.evil.net/mcp",
            "not a uri",
        ] {
            assert!(!same_resource(mcp, other), "{other}");
        }
        assert!(same_resource(
            "https://api.example.com",
            "https://api.example.com/"
        ));
        assert_eq!(
            canonical("HTTP://127.0.0.1:80/").as_deref(),
            Some("http://127.0.0.1")
        );
    }
}
