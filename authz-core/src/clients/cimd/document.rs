//! Validating a Client ID Metadata Document (draft-ietf-oauth-client-id-metadata-document §4,
//! MCP authorization 2026-07-28): a JSON object whose `client_id` is exactly the URL it was
//! fetched from, with `client_name` and `redirect_uris`; every other rule is registration's
//! (`clients::registration::settings`: redirect URIs https or loopback, no fragments or control
//! characters, scopes users can be granted). A document is public, so it may hold no secret;
//! members we do not use are ignored.

use serde_json::Value;

use crate::clients::registration::{self, ClientMetadata, Source};
use crate::config::Config;
use crate::store::ClientSettings;

/// Members that would put a shared secret in a public document.
const SECRET_MEMBERS: [&str; 2] = ["client_secret", "client_secret_expires_at"];

/// The settings `body` gives the client `client_id`, or why it is refused.
pub fn validate(config: &Config, client_id: &str, body: &[u8]) -> Result<ClientSettings, String> {
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| format!("the metadata document is not valid JSON: {e}"))?;
    let Some(obj) = doc.as_object() else {
        return Err("the metadata document is not a JSON object".to_owned());
    };
    match obj.get("client_id").and_then(Value::as_str) {
        Some(id) if id == client_id => {}
        Some(_) => {
            return Err("the document's client_id is not the URL it was fetched from".into());
        }
        None => return Err("the document has no client_id".to_owned()),
    }
    if let Some(m) = SECRET_MEMBERS.iter().find(|m| obj.contains_key(**m)) {
        return Err(format!(
            "the document contains {m}; a metadata document must hold no secret"
        ));
    }
    let name = obj
        .get("client_name")
        .and_then(Value::as_str)
        .map(str::trim);
    if name.is_none_or(str::is_empty) {
        return Err("the document has no client_name".to_owned());
    }
    if !obj.get("redirect_uris").is_some_and(Value::is_array) {
        return Err("the document has no redirect_uris".to_owned());
    }
    let metadata: ClientMetadata = serde_json::from_value(doc.clone())
        .map_err(|e| format!("the metadata document has a member of the wrong type: {e}"))?;
    registration::settings(config, metadata, Source::MetadataDocument).map_err(|e| e.description())
}
