//! Each provider's endpoints: from its OpenID Provider metadata (OIDC Discovery 1.0 §4,
//! `<issuer>/.well-known/openid-configuration`) or, for plain OAuth 2.0 providers, from the
//! configuration. The document is fetched through the SSRF-guarded fetcher (https, no
//! redirects, bounded size and time, outside the anonymous fetch budgets: the operator named
//! it), cached for its max-age within `cimd.min_cache_secs..=max_cache_secs`, and while the
//! provider fails the last good copy serves for `cimd.key_set_max_stale_secs`.
//!
//! The document is checked before use: its `issuer` is the configured one exactly (§4.3; a
//! multi-tenant template such as Entra's `…/{tenantid}/v2.0` only with `allowed_issuers`), its
//! endpoints are https, it has a `jwks_uri`, and it signs ID tokens with an asymmetric
//! algorithm (never `none`, never HMAC: RFC 8725 §3.1).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jsonwebtoken::Algorithm;
use serde::Deserialize;

use crate::config::upstream::{Upstream, UpstreamKind};
use crate::keys::jws::ASYMMETRIC;
use crate::outbound::cimd::Cimd;

/// Where a provider's endpoints are, and what it promises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// The `iss` its ID tokens and authorization responses carry (`None`: a plain OAuth 2.0
    /// provider, or a multi-tenant one whose issuers are `allowed_issuers`).
    pub issuer: Option<String>,
    pub authorization: url::Url,
    pub token: url::Url,
    pub userinfo: Option<url::Url>,
    /// RFC 7009 revocation, when the provider offers it (discovery's `revocation_endpoint`).
    pub revocation: Option<url::Url>,
    pub jwks_uri: Option<String>,
    /// RFC 9207 §3: the provider sends `iss` in every authorization response.
    pub iss_parameter: bool,
    /// The algorithms its ID tokens may be signed with (asymmetric only).
    pub algs: Vec<Algorithm>,
}

/// A provider's standing, for `authz upstream list` and the console.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Status {
    /// When its metadata was last fetched (or, for OAuth 2.0 providers, never needed).
    pub last_ok_at: Option<i64>,
    /// The last failure (our words), and when.
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
}

#[derive(Debug)]
struct Cached {
    endpoints: Arc<Endpoints>,
    fetched_at: i64,
    fresh_until: i64,
}

/// The providers' cached metadata and standing.
#[derive(Debug, Default)]
pub struct Providers {
    cache: Mutex<HashMap<String, Cached>>,
    status: Mutex<HashMap<String, Status>>,
}

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: Option<String>,
    revocation_endpoint: Option<String>,
    jwks_uri: Option<String>,
    response_types_supported: Option<Vec<String>>,
    code_challenge_methods_supported: Option<Vec<String>>,
    id_token_signing_alg_values_supported: Option<Vec<String>>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
}

impl Providers {
    /// The standing of provider `id`.
    pub fn status(&self, id: &str) -> Status {
        self.status
            .lock()
            .ok()
            .and_then(|m| m.get(id).cloned())
            .unwrap_or_default()
    }

    /// Record a failure of provider `id` (our words).
    pub(crate) fn failed(&self, id: &str, what: &str, now: i64) {
        if let Ok(mut m) = self.status.lock() {
            let s = m.entry(id.to_owned()).or_default();
            s.last_error = Some(what.to_owned());
            s.last_error_at = Some(now);
        }
    }

    fn succeeded(&self, id: &str, now: i64) {
        if let Ok(mut m) = self.status.lock() {
            m.entry(id.to_owned()).or_default().last_ok_at = Some(now);
        }
    }

    /// The endpoints of `up` at `now` (fetched, cached, or stale while the provider fails).
    pub(crate) async fn endpoints(
        &self,
        cimd: &Cimd,
        cfg: &crate::config::cimd::CimdConfig,
        up: &Upstream,
        now: i64,
    ) -> Result<Arc<Endpoints>, String> {
        if up.kind == UpstreamKind::Oauth2 {
            return configured(up).map(Arc::new);
        }
        let stale = {
            let cache = self.cache.lock().map_err(|_| "cache poisoned".to_owned())?;
            match cache.get(&up.id) {
                Some(c) if now < c.fresh_until => return Ok(c.endpoints.clone()),
                Some(c) if now - c.fetched_at <= cfg.key_set_max_stale_secs => {
                    Some(c.endpoints.clone())
                }
                _ => None,
            }
        };
        match discover(cimd, up, now).await {
            Ok((endpoints, max_age)) => {
                let endpoints = Arc::new(endpoints);
                let age = max_age
                    .unwrap_or(cfg.min_cache_secs)
                    .clamp(cfg.min_cache_secs, cfg.max_cache_secs);
                if let Ok(mut cache) = self.cache.lock() {
                    cache.insert(
                        up.id.clone(),
                        Cached {
                            endpoints: endpoints.clone(),
                            fetched_at: now,
                            fresh_until: now + age,
                        },
                    );
                }
                self.succeeded(&up.id, now);
                Ok(endpoints)
            }
            Err(e) => {
                tracing::warn!(provider = %up.id, error = %e, "upstream discovery failed");
                self.failed(&up.id, &e, now);
                stale.ok_or(e)
            }
        }
    }
}

/// A plain OAuth 2.0 provider's endpoints, as configured (validated at start).
fn configured(up: &Upstream) -> Result<Endpoints, String> {
    let parse = |v: &Option<String>, key: &str| {
        v.as_deref()
            .and_then(|u| url::Url::parse(u).ok())
            .ok_or_else(|| format!("{key} is not configured"))
    };
    Ok(Endpoints {
        issuer: None,
        authorization: parse(&up.authorization_endpoint, "authorization_endpoint")?,
        token: parse(&up.token_endpoint, "token_endpoint")?,
        userinfo: Some(parse(&up.userinfo_endpoint, "userinfo_endpoint")?),
        revocation: None,
        jwks_uri: None,
        iss_parameter: false,
        algs: Vec::new(),
    })
}

/// Fetch and check the OpenID Provider metadata of `up`: the endpoints and the document's
/// max-age.
async fn discover(
    cimd: &Cimd,
    up: &Upstream,
    now: i64,
) -> Result<(Endpoints, Option<i64>), String> {
    let issuer = up.issuer.as_deref().unwrap_or_default();
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let url = url::Url::parse(&url).map_err(|_| "the issuer is not a URL".to_owned())?;
    let fetched = cimd
        .fetcher()
        .fetch_trusted(&url, now)
        .await
        .map_err(|e| format!("its metadata could not be fetched: {e}"))?;
    let doc: Metadata = serde_json::from_slice(&fetched.body)
        .map_err(|e| format!("its metadata is not an OpenID Provider document: {e}"))?;
    Ok((check(up, doc)?, fetched.max_age))
}

/// The endpoints of a fetched document, after its checks (the module's list).
fn check(up: &Upstream, doc: Metadata) -> Result<Endpoints, String> {
    let configured = up.issuer.as_deref().unwrap_or_default();
    let multi_tenant = doc.issuer != configured
        && doc.issuer.contains("{tenantid}")
        && !up.allowed_issuers.is_empty();
    if doc.issuer != configured && !multi_tenant {
        return Err(format!(
            "its metadata names the issuer {:?}, not the configured {configured:?} (OIDC \
             Discovery §4.3)",
            doc.issuer
        ));
    }
    let endpoint = |over: &Option<String>, found: &str, key: &str| {
        let raw = over.as_deref().unwrap_or(found);
        url::Url::parse(raw)
            .ok()
            .filter(|u| {
                shared::config::https_or_loopback(u.scheme(), u.host_str())
                    && u.fragment().is_none()
            })
            .ok_or_else(|| format!("its {key} is not an https URL"))
    };
    let authorization = endpoint(
        &up.authorization_endpoint,
        &doc.authorization_endpoint,
        "authorization_endpoint",
    )?;
    let token = endpoint(&up.token_endpoint, &doc.token_endpoint, "token_endpoint")?;
    let userinfo = match (&up.userinfo_endpoint, &doc.userinfo_endpoint) {
        (None, None) => None,
        (over, found) => Some(endpoint(
            over,
            found.as_deref().unwrap_or_default(),
            "userinfo_endpoint",
        )?),
    };
    let revocation = match &doc.revocation_endpoint {
        Some(r) => Some(endpoint(&None, r, "revocation_endpoint")?),
        None => None,
    };
    let jwks_uri = doc
        .jwks_uri
        .filter(|u| u.starts_with("https://"))
        .ok_or("its metadata has no https jwks_uri")?;
    if let Some(types) = &doc.response_types_supported
        && !types.iter().any(|t| t == "code")
    {
        return Err("it does not support the authorization code flow".into());
    }
    if let Some(methods) = &doc.code_challenge_methods_supported
        && !methods.iter().any(|m| m == "S256")
    {
        return Err("it does not support PKCE with S256 (RFC 7636)".into());
    }
    // OIDC Discovery §3: RS256 when the list is absent (it is REQUIRED, and must hold RS256).
    let names = doc
        .id_token_signing_alg_values_supported
        .unwrap_or_else(|| vec!["RS256".to_owned()]);
    let algs: Vec<Algorithm> = names
        .iter()
        .filter_map(|n| n.parse::<Algorithm>().ok())
        .filter(|a| ASYMMETRIC.contains(a))
        .collect();
    if algs.is_empty() {
        return Err(
            "it signs ID tokens with no asymmetric algorithm (none and HMAC are \
                    refused: RFC 8725 §3.1)"
                .into(),
        );
    }
    Ok(Endpoints {
        issuer: (!multi_tenant).then(|| doc.issuer.clone()),
        authorization,
        token,
        userinfo,
        revocation,
        jwks_uri: Some(jwks_uri),
        iss_parameter: doc.authorization_response_iss_parameter_supported,
        algs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up() -> Upstream {
        Upstream {
            id: "corp".into(),
            issuer: Some("https://idp.example".into()),
            ..Upstream::default()
        }
    }

    fn doc(v: serde_json::Value) -> Metadata {
        let mut base = serde_json::json!({
            "issuer": "https://idp.example",
            "authorization_endpoint": "https://idp.example/authorize",
            "token_endpoint": "https://idp.example/token",
            "jwks_uri": "https://idp.example/jwks",
        });
        for (k, val) in v.as_object().unwrap() {
            base[k] = val.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    #[test]
    fn a_good_document_passes_and_a_bad_one_says_why() {
        let ok = check(&up(), doc(serde_json::json!({}))).unwrap();
        assert_eq!(ok.issuer.as_deref(), Some("https://idp.example"));
        assert_eq!(ok.algs, vec![Algorithm::RS256]);
        let bad = |v: serde_json::Value| check(&up(), doc(v)).unwrap_err();
        assert!(bad(serde_json::json!({ "issuer": "https://evil.example" })).contains("issuer"));
        assert!(
            bad(serde_json::json!({ "id_token_signing_alg_values_supported": ["none", "HS256"] }))
                .contains("asymmetric")
        );
        assert!(
            bad(serde_json::json!({ "token_endpoint": "http://idp.example/t" }))
                .contains("token_endpoint")
        );
        assert!(bad(serde_json::json!({ "jwks_uri": null })).contains("jwks_uri"));
        assert!(
            bad(serde_json::json!({ "code_challenge_methods_supported": ["plain"] }))
                .contains("S256")
        );
        // A multi-tenant template only with allowed_issuers.
        let tenant = serde_json::json!({ "issuer": "https://idp.example/{tenantid}/v2.0" });
        assert!(check(&up(), doc(tenant.clone())).is_err());
        let mut multi = up();
        multi.allowed_issuers = vec!["https://idp.example/t1/v2.0".into()];
        assert_eq!(check(&multi, doc(tenant)).unwrap().issuer, None);
    }
}
