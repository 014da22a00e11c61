//! Discovery from the MCP server's URL alone, as any MCP client does it: the 401 challenge
//! (or the well-known path) → RFC 9728 protected-resource metadata → the authorization
//! server's RFC 8414 metadata.

use serde::Deserialize;

use crate::error::{ClientError, Result, challenge_params};

/// Where everything is.
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// The MCP endpoint.
    pub mcp_url: String,
    /// The resource URI to ask tokens for (RFC 8707), from the protected-resource metadata.
    pub resource: String,
    pub issuer: String,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: String,
    pub revocation_endpoint: Option<String>,
    /// RFC 8628 §4: where a device authorization starts (when the server offers the flow).
    pub device_authorization_endpoint: Option<String>,
    /// Scopes the resource server lists.
    pub scopes_supported: Vec<String>,
    /// RFC 9207 §3: the server puts `iss` in every authorization response, so a response
    /// without it is refused (§2.4).
    pub authorization_response_iss_parameter_supported: bool,
}

#[derive(Debug, Deserialize)]
struct ResourceMetadata {
    resource: String,
    authorization_servers: Vec<String>,
    #[serde(default)]
    scopes_supported: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct ServerMetadata {
    issuer: String,
    token_endpoint: String,
    authorization_endpoint: Option<String>,
    revocation_endpoint: Option<String>,
    device_authorization_endpoint: Option<String>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
}

async fn get_json<T: serde::de::DeserializeOwned>(http: &reqwest::Client, url: &str) -> Result<T> {
    let r = http.get(url).send().await?;
    if !r.status().is_success() {
        return Err(ClientError::Protocol(format!(
            "GET {url}: HTTP {}",
            r.status()
        )));
    }
    r.json()
        .await
        .map_err(|e| ClientError::Protocol(format!("GET {url}: {e}")))
}

/// Discover the endpoints behind `mcp_url`.
pub async fn discover(http: &reqwest::Client, mcp_url: &str) -> Result<Endpoints> {
    let url =
        url::Url::parse(mcp_url).map_err(|e| ClientError::Protocol(format!("{mcp_url}: {e}")))?;
    // 1. An unauthenticated request: the 401 names the metadata (RFC 9728 §5.1).
    let probe = http
        .post(mcp_url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":0,"method":"ping"}"#)
        .send()
        .await?;
    let from_challenge = probe
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .and_then(|h| challenge_params(h).get("resource_metadata").cloned());
    // 2. Else the well-known location for this path (RFC 9728 §3.1).
    let metadata_url = from_challenge.unwrap_or_else(|| {
        format!(
            "{}/.well-known/oauth-protected-resource{}",
            url.origin().ascii_serialization(),
            url.path().trim_end_matches('/')
        )
    });
    let prm: ResourceMetadata = get_json(http, &metadata_url).await?;
    let issuer = prm
        .authorization_servers
        .first()
        .cloned()
        .ok_or_else(|| ClientError::Protocol("no authorization server listed".into()))?;
    // 3. RFC 8414 §3: the well-known path inserted after the host; the issuer must match.
    let is = url::Url::parse(&issuer).map_err(|e| ClientError::Protocol(e.to_string()))?;
    let as_url = format!(
        "{}/.well-known/oauth-authorization-server{}",
        is.origin().ascii_serialization(),
        is.path().trim_end_matches('/')
    );
    let asm: ServerMetadata = get_json(http, &as_url).await?;
    if asm.issuer != issuer {
        return Err(ClientError::Protocol(format!(
            "issuer mismatch: metadata says {}, resource names {issuer} (RFC 8414 §3.3)",
            asm.issuer
        )));
    }
    Ok(Endpoints {
        mcp_url: mcp_url.to_owned(),
        resource: prm.resource,
        issuer,
        authorization_endpoint: asm.authorization_endpoint,
        token_endpoint: asm.token_endpoint,
        revocation_endpoint: asm.revocation_endpoint,
        device_authorization_endpoint: asm.device_authorization_endpoint,
        scopes_supported: prm.scopes_supported,
        authorization_response_iss_parameter_supported: asm
            .authorization_response_iss_parameter_supported,
    })
}
