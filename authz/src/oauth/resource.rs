//! Resource indicators (RFC 8707): which audience a token is for.

use crate::error::{Error, Result};
use crate::store::Client;

/// RFC 8707 §2: an absolute URI without a fragment. We also require http(s).
pub fn validate_resource_uri(value: &str) -> std::result::Result<(), String> {
    let url =
        url::Url::parse(value).map_err(|e| format!("{value:?} is not an absolute URI: {e}"))?;
    if url.fragment().is_some() || value.contains('#') {
        return Err(format!(
            "{value:?} must not contain a fragment (RFC 8707 §2)"
        ));
    }
    if !matches!(url.scheme(), "https" | "http") {
        return Err(format!("{value:?} must be an http(s) URI"));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("{value:?} contains whitespace"));
    }
    Ok(())
}

/// Pick the token's audience: the one `resource` asked for, or the default. The result is
/// compared byte-for-byte with the client's allowed resources (no normalisation tricks).
pub fn select_audience(
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
    if !client.resources.iter().any(|r| r == &chosen) {
        return Err(Error::invalid_target(if requested.is_empty() {
            format!(
                "no resource given and the client may not use the default resource {chosen}; \
                 send the resource parameter"
            )
        } else {
            format!("the client may not request tokens for {chosen}")
        }));
    }
    if !allowed_for_grant.is_empty() && !allowed_for_grant.iter().any(|r| r == &chosen) {
        return Err(Error::invalid_target(format!(
            "the grant does not cover {chosen}"
        )));
    }
    Ok(chosen)
}
