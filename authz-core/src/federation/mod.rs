//! Federation (issue 26): people sign in here through an identity provider they already have
//! — an OpenID Connect provider (Entra ID, Okta, Google, Keycloak, another `authz`) or a plain
//! OAuth 2.0 one (GitHub) — while MCP clients keep talking to this server as they are.
//!
//! As a relying party this server does what RFC 9700 and OIDC Core ask:
//! - `discovery`: the provider's metadata (OIDC Discovery §4) and keys, fetched through the
//!   SSRF-guarded fetcher, cached, served stale while the provider fails;
//! - `round_trip`: the authorization request (PKCE S256, `state` and `nonce` random, single use,
//!   bound to the browser, short-lived; one redirect URI per provider against mix-up) and the
//!   callback (RFC 9207 `iss`, the code exchanged with the verifier);
//! - `id_token`: the ID token's checklist (OIDC Core §3.1.3.7);
//! - `ldap`: an LDAP directory or Active Directory behind the password form (`[ldap]`);
//! - `account`: who the upstream identity is here — a linked user, a provisioned one, or a
//!   refusal (never a silent link to an existing account), and roles from upstream groups.
//!
//! Refusals carry our own words for the page; what the provider said is only logged and
//! audited (as a short reason), never shown or reflected.

pub mod account;
pub mod back_channel;
pub mod discovery;
pub mod id_token;
pub mod ldap;
pub mod links;
pub mod round_trip;
mod token_endpoint;
pub mod vault;

use crate::config::upstream::Upstream;
use crate::identity::IdentityServices;
use crate::outbound::cimd::Cimd;

pub use discovery::Providers;

/// What the federation code works with: the identity services, the guarded fetcher and key
/// sets (`Cimd`), and the providers' cached metadata.
#[derive(Clone, Copy)]
pub struct FederationServices<'a> {
    pub identity: IdentityServices<'a>,
    pub cimd: &'a Cimd,
    pub providers: &'a Providers,
}

impl std::fmt::Debug for FederationServices<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FederationServices")
    }
}

impl<'a> FederationServices<'a> {
    /// The configured provider `id`.
    pub fn provider(&self, id: &str) -> Option<&'a Upstream> {
        self.identity.config.upstream.iter().find(|u| u.id == id)
    }

    /// The endpoints of `up` now (its metadata fetched, cached, or stale while it fails);
    /// why not, in our words.
    pub(crate) async fn endpoints(
        &self,
        up: &Upstream,
        now: i64,
    ) -> Result<std::sync::Arc<discovery::Endpoints>, String> {
        self.providers
            .endpoints(self.cimd, &self.identity.config.cimd, up, now)
            .await
    }

    /// The providers people may sign in (and link) through now: every configured one, or
    /// under `federation.only` that one alone (none when it is `ldap`).
    pub fn sign_in_providers(&self) -> impl Iterator<Item = &'a Upstream> + 'a {
        let only = self.identity.config.federation.only.as_deref();
        self.identity
            .config
            .upstream
            .iter()
            .filter(move |u| only.is_none_or(|o| o == u.id))
    }

    /// The provider `id`, if people may sign in through it now (`sign_in_providers`).
    pub fn sign_in_provider(&self, id: &str) -> Option<&'a Upstream> {
        self.sign_in_providers().find(|u| u.id == id)
    }

    /// How the provider `id` (or the directory) is named on pages.
    pub fn provider_name(&self, id: &str) -> String {
        let config = self.identity.config;
        if id == crate::config::ldap::PROVIDER && config.ldap.enabled() {
            return config.ldap.name.clone();
        }
        self.provider(id).map_or_else(
            || format!("{id} (no longer configured)"),
            |u| u.name.clone(),
        )
    }

    /// The redirect URI registered at provider `id`: one per provider, so a response cannot
    /// be taken for another provider's (RFC 9700 §4.4.2, mix-up).
    pub fn redirect_uri(&self, id: &str) -> String {
        format!(
            "{}/login/upstream/{id}/callback",
            self.identity.config.issuer
        )
    }
}

/// Why an upstream sign-in was refused: a short reason for the audit log, and what the person
/// is told (our words only: nothing the provider sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: &'static str,
    pub message: String,
}

impl Refusal {
    pub fn new(reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }

    /// The provider answered in a way this server does not accept (a detail in `reason`).
    pub(crate) fn provider(reason: &'static str) -> Self {
        Self::new(
            reason,
            "The identity provider's answer could not be accepted, so you are not signed in. \
             Try again; if it keeps happening, tell your administrator (the reason is in the \
             audit log).",
        )
    }
}

/// A configured provider and how it stands (for `authz upstream list` and the console).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProviderReport {
    pub id: String,
    pub kind: &'static str,
    pub name: String,
    pub issuer: Option<String>,
    /// Where people are sent to sign in (from its metadata, or configured).
    pub authorization_endpoint: Option<String>,
    /// The redirect URI to register at the provider.
    pub redirect_uri: String,
    /// `ok`, or `error` with what failed (in our words).
    pub status: &'static str,
    pub error: Option<String>,
    pub last_ok_at: Option<i64>,
    pub last_error_at: Option<i64>,
    /// Local users linked to an identity of this provider.
    pub users: i64,
    /// `private_key_jwt`: the public JWK to register at the provider.
    pub client_jwk: Option<serde_json::Value>,
}

/// Every configured provider, its metadata checked now (fetched, or from the cache).
pub async fn report(
    svc: FederationServices<'_>,
    now: i64,
) -> crate::error::Result<Vec<ProviderReport>> {
    let counts = svc.identity.store.federated_user_counts().await?;
    let mut out = Vec::new();
    if let Some(directory) = svc.identity.directory {
        let cfg = &svc.identity.config.ldap;
        let checked = directory.check(svc.identity).await;
        out.push(ProviderReport {
            id: crate::config::ldap::PROVIDER.to_owned(),
            kind: "ldap",
            name: cfg.name.clone(),
            issuer: cfg.url.clone(),
            authorization_endpoint: None,
            redirect_uri: "— (the sign-in form)".to_owned(),
            status: if checked.is_ok() { "ok" } else { "error" },
            error: checked.as_ref().err().cloned(),
            last_ok_at: checked.is_ok().then_some(now),
            last_error_at: checked.is_err().then_some(now),
            users: counts
                .iter()
                .find(|(p, _)| p == crate::config::ldap::PROVIDER)
                .map_or(0, |(_, n)| *n),
            client_jwk: None,
        });
    }
    for up in &svc.identity.config.upstream {
        let checked = svc.endpoints(up, now).await;
        let status = svc.providers.status(&up.id);
        let (state, error, authorization) = match &checked {
            Ok(e) => ("ok", None, Some(e.authorization.to_string())),
            Err(e) => ("error", Some(e.clone()), None),
        };
        out.push(ProviderReport {
            id: up.id.clone(),
            kind: up.kind.as_str(),
            name: up.name.clone(),
            issuer: up.issuer.clone(),
            authorization_endpoint: authorization,
            redirect_uri: svc.redirect_uri(&up.id),
            status: state,
            error,
            last_ok_at: status.last_ok_at,
            last_error_at: status.last_error_at,
            users: counts
                .iter()
                .find(|(p, _)| p == &up.id)
                .map_or(0, |(_, n)| *n),
            client_jwk: (up.client_auth == crate::config::upstream::ClientAuth::PrivateKeyJwt)
                .then(|| token_endpoint::client_key(up).ok())
                .flatten()
                .and_then(|k| serde_json::to_value(k.public_jwk()).ok()),
        });
    }
    Ok(out)
}
