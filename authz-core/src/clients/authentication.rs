//! Client authentication at the token endpoint (RFC 6749 §2.3): `client_secret_basic`,
//! `client_secret_post`, `private_key_jwt` (RFC 7523 §2.2) or `none` for public clients.
//! Exactly one method per request; the method must be the one the client registered; secrets
//! compared as SHA-256 in constant time.
//!
//! What a request presented arrives typed ([`ClientCredentials`]: the web edge fills in the
//! `Authorization` header, the protocol the body's parameters); [`presented`] applies the
//! rules of §2.3 to it, and the `authenticate_*` functions check the result.

use crate::events::kinds;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::HeaderValue;
use shared::secret::ClientSecret;

use crate::clients::ClientServices;
use crate::clients::assertion;
use crate::crypto::{ct_eq, sha256_hex};
use crate::error::{Error, Result};
use std::sync::Arc;

use crate::store::{AuthMethod, Client, ClientCache, ClientStore, Freshness, Registration};

/// The client credentials a request presented (RFC 6749 §2.3), as sent: nothing is decoded or
/// checked yet ([`presented`] does both, so its refusals come where the protocol asks for them).
#[derive(Debug, Clone, Default)]
pub struct ClientCredentials {
    /// The `Authorization` header (`client_secret_basic`, RFC 6749 §2.3.1).
    pub authorization: Option<HeaderValue>,
    /// The body's `client_id` (`client_secret_post`, `none`, or beside an assertion).
    pub client_id: Option<String>,
    /// The body's `client_secret` (`client_secret_post`).
    pub client_secret: Option<String>,
    /// The body's `client_assertion_type` (RFC 7523 §2.2).
    pub assertion_type: Option<String>,
    /// The body's `client_assertion` (RFC 7523 §2.2).
    pub assertion: Option<String>,
}

/// Credentials as presented, before they are checked.
#[derive(Debug)]
pub struct Presented {
    pub client_id: String,
    pub secret: Option<ClientSecret>,
    pub method: AuthMethod,
    /// `private_key_jwt`: the client assertion (RFC 7523 §2.2).
    pub assertion: Option<String>,
}

/// The client's credentials under the rules of RFC 6749 §2.3: one method, Basic credentials
/// form-decoded (§2.3.1), a client assertion alone (RFC 7523 §2.2).
pub fn presented(c: &ClientCredentials) -> Result<Presented> {
    let basic = match &c.authorization {
        Some(v) => Some(basic_credentials(v)?),
        None => None,
    };
    let body_id = c.client_id.as_deref();
    let body_secret = c.client_secret.as_deref();
    // RFC 7523 §2.2: a client assertion, alone (no Basic, no secret).
    if c.assertion_type.is_some() || c.assertion.is_some() {
        if c.assertion_type.as_deref() != Some(assertion::ASSERTION_TYPE) {
            return Err(Error::invalid_client(format!(
                "client_assertion_type must be {}",
                assertion::ASSERTION_TYPE
            )));
        }
        let assertion = c
            .assertion
            .as_deref()
            .ok_or_else(|| Error::invalid_client("client_assertion is missing"))?;
        if basic.is_some() || body_secret.is_some() {
            return Err(Error::invalid_request(
                "use one client authentication method, not a client assertion and a secret",
            ));
        }
        let client_id = match (body_id, assertion::claimed_client(assertion)) {
            (Some(id), _) => id.to_owned(),
            (None, Some(sub)) => sub,
            (None, None) => return Err(Error::invalid_client("the client assertion has no sub")),
        };
        return Ok(Presented {
            client_id,
            secret: None,
            method: AuthMethod::PrivateKeyJwt,
            assertion: Some(assertion.to_owned()),
        });
    }
    match (basic, body_id, body_secret) {
        (Some(_), _, Some(_)) => Err(Error::invalid_request(
            "use one client authentication method, not Basic and client_secret (RFC 6749 §2.3)",
        )),
        (Some((id, _)), Some(body_id), None) if body_id != id => Err(Error::invalid_request(
            "client_id does not match the Basic credentials",
        )),
        (Some((id, secret)), _, None) => Ok(Presented {
            client_id: id,
            secret: Some(ClientSecret::new(secret)),
            method: AuthMethod::ClientSecretBasic,
            assertion: None,
        }),
        (None, Some(id), Some(secret)) => Ok(Presented {
            client_id: id.to_owned(),
            secret: Some(ClientSecret::new(secret)),
            method: AuthMethod::ClientSecretPost,
            assertion: None,
        }),
        (None, Some(id), None) => Ok(Presented {
            client_id: id.to_owned(),
            secret: None,
            method: AuthMethod::None,
            assertion: None,
        }),
        (None, None, _) => Err(Error::invalid_client("client authentication is required")),
    }
}

/// `Authorization: Basic …` (RFC 7617) → the client id and secret, each form-decoded first
/// (RFC 6749 §2.3.1).
fn basic_credentials(v: &HeaderValue) -> Result<(String, String)> {
    let v = v
        .to_str()
        .map_err(|_| Error::invalid_client("malformed Authorization header"))?;
    let (scheme, rest) = v.split_once(' ').unwrap_or((v, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(Error::invalid_client(
            "unsupported Authorization scheme: use Basic (client_secret_basic)",
        ));
    }
    let raw = STANDARD
        .decode(rest.trim())
        .map_err(|_| Error::invalid_client("malformed Basic credentials"))?;
    let raw =
        String::from_utf8(raw).map_err(|_| Error::invalid_client("malformed Basic credentials"))?;
    let (id, secret) = raw
        .split_once(':')
        .ok_or_else(|| Error::invalid_client("malformed Basic credentials"))?;
    Ok((form_decode(id.as_bytes())?, form_decode(secret.as_bytes())?))
}

/// Decode one `application/x-www-form-urlencoded` component (`+` is a space, then
/// percent-decoding) and require UTF-8: the form parser's (`protocol::form`) and the Basic
/// credentials' (RFC 6749 §2.3.1 form-encodes them first) one decoder.
pub(crate) fn form_decode(raw: &[u8]) -> Result<String> {
    let plus: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    let bytes: Vec<u8> = percent_encoding::percent_decode(&plus).collect();
    String::from_utf8(bytes).map_err(|_| Error::invalid_request("parameters must be UTF-8"))
}

/// The longest client id looked up (metadata-document URLs included).
const MAX_CLIENT_ID_BYTES: usize = 2048;

/// Authenticate the client of a request to a token-style endpoint (`/token`, `/par`,
/// `/device_authorization`); a failure is audited (`client.auth_failed`, with `details`) before
/// it is answered.
pub async fn authenticate_audited(
    svc: ClientServices<'_>,
    credentials: &ClientCredentials,
    details: serde_json::Value,
    ctx: &crate::events::audit::RequestContext,
) -> Result<Arc<Client>> {
    let presented = presented(credentials)?;
    match authenticate_request(svc, &presented, ctx.now).await {
        Ok(c) => Ok(c),
        Err(e) => {
            let mut details = details;
            if let (Some(cause), Some(map)) = (e.cause(), details.as_object_mut()) {
                map.insert("reason".into(), cause.into());
            }
            let ev = crate::store::AuditEvent::new(
                ctx.now,
                kinds::CLIENT_AUTH_FAILED,
                crate::store::Outcome::Failure,
            )
            .client(presented.client_id.chars().take(256).collect::<String>())
            .details(details)
            .ctx(ctx);
            svc.audit(ev).await;
            Err(e)
        }
    }
}

/// Authenticate the client of a request to this server (`/token`, `/revoke`, `/introspect`):
/// a metadata-document client is resolved first (`clients::cimd::resolve`: cache, else fetch), then the
/// credentials are checked like any client's.
pub async fn authenticate_request(
    svc: ClientServices<'_>,
    p: &Presented,
    now: i64,
) -> Result<Arc<Client>> {
    if p.client_id.len() <= MAX_CLIENT_ID_BYTES
        && crate::clients::cimd::is_document_url(&p.client_id)
    {
        crate::clients::cimd::resolve(svc, &p.client_id).await??;
    }
    let client = authenticate(svc.clients, svc.store, p, now).await?;
    verify_assertion(svc, p, &client, now).await?;
    Ok(client)
}

/// Authenticate the client of an endpoint only an administrator's clients may use (the Shared
/// Signals receiver endpoints, `/resource-events`): against stored clients only. No metadata
/// document is resolved, so an anonymous caller cannot make this server fetch anything here (a
/// URL client id is an unknown client: `invalid_client`), and only clients an administrator
/// registered pass.
pub async fn authenticate_registered(
    svc: ClientServices<'_>,
    p: &Presented,
    now: i64,
) -> Result<Arc<Client>> {
    let client = authenticate(svc.clients, svc.store, p, now).await?;
    if client.registration != Registration::Admin {
        return Err(Error::invalid_client("client authentication failed"));
    }
    verify_assertion(svc, p, &client, now).await?;
    Ok(client)
}

/// A `private_key_jwt` request's assertion: presented, so checked (never a fallback to `none`
/// when an assertion fails). A refusal is told to the client as a wrong secret is, "client
/// authentication failed": before the assertion verifies, nothing proves the caller is the
/// client, and the reason (a malformed JWT, no key of that `kid`, the key host's failure)
/// would tell anyone that the client exists and what keys it holds. The reason is the error's
/// log-only cause: the audit event (`client.auth_failed`, `reason`) and the server log.
async fn verify_assertion(
    svc: ClientServices<'_>,
    p: &Presented,
    client: &Client,
    now: i64,
) -> Result<()> {
    if p.method == AuthMethod::PrivateKeyJwt {
        let assertion = p.assertion.as_deref().unwrap_or_default();
        if let Err(e) = assertion::verify(svc, client, assertion, now).await {
            if e.code() != shared::ErrorCode::InvalidClient {
                return Err(e); // storage: the server's failure, not the client's
            }
            tracing::info!(client = %client.id, cause = %e.description(), "client assertion refused");
            return Err(e.concealed_as(Error::invalid_client(GENERIC)));
        }
    }
    Ok(())
}

/// Check presented credentials against the registration (through the client cache).
/// What every failed client authentication is told, whatever the reason, unless the caller
/// proved it is the client (so nobody learns which clients exist).
const GENERIC: &str = "client authentication failed";

async fn authenticate(
    cache: &ClientCache,
    store: &dyn ClientStore,
    p: &Presented,
    now: i64,
) -> Result<Arc<Client>> {
    if p.client_id.len() > MAX_CLIENT_ID_BYTES {
        return Err(Error::invalid_client(GENERIC));
    }
    let presented_hash = p.secret.as_ref().map(|s| sha256_hex(s.expose()));
    let Some((mut client, freshness)) = cache.get(store, &p.client_id, now).await? else {
        // Same work as a real comparison, so unknown ids are not cheaper to probe.
        if let Some(h) = &presented_hash {
            let _ = ct_eq(h.as_bytes(), &[b'0'; 64]);
        }
        return Err(Error::invalid_client(GENERIC));
    };
    if !secret_matches(&client, presented_hash.as_deref()) && freshness == Freshness::Cached {
        // The secret may have been rotated by another process: check against a fresh read.
        match cache.load(store, &p.client_id, now).await? {
            Some(fresh) => client = fresh,
            None => return Err(Error::invalid_client(GENERIC)),
        }
    }
    // A client listing `none` beside `private_key_jwt` may present either.
    let allowed =
        client.auth_method == p.method || (client.also_public && p.method == AuthMethod::None);
    let matches = secret_matches(&client, presented_hash.as_deref());
    if !allowed {
        // Which method a client uses is told only to a caller that proved its secret: to
        // anyone else a known client id answers as an unknown one does (no list of clients).
        if p.secret.is_some() && matches {
            return Err(Error::invalid_client(format!(
                "this client must authenticate with {}",
                client.auth_method.as_str()
            )));
        }
        return Err(Error::invalid_client(GENERIC));
    }
    if !matches {
        return Err(Error::invalid_client(GENERIC));
    }
    if !client.is_live(now) {
        // A revoked or expired API key (after the secret check: no oracle for unknown secrets).
        return Err(Error::invalid_client(
            "this credential was revoked or has expired",
        ));
    }
    Ok(client)
}

/// Public clients present no secret; confidential ones the one whose hash is stored.
fn secret_matches(client: &Client, presented_hash: Option<&str>) -> bool {
    match (&client.secret_hash, presented_hash) {
        // Public clients, and private_key_jwt clients (their assertion is checked next).
        (None, None) => client.is_public() || client.auth_method == AuthMethod::PrivateKeyJwt,
        (Some(stored), Some(given)) => ct_eq(stored.as_bytes(), given.as_bytes()),
        _ => false,
    }
}
