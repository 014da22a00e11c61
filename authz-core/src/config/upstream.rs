//! Federation (issue 26): the upstream identity providers people sign in through
//! (`[[upstream]]`, TOML only; their secrets also from the environment or a file) and the
//! policy over all of them (`[federation]`, one table: every key also from `AUTHZ_FEDERATION_*`).
//!
//! ```toml
//! [federation]
//! only = "corp"                      # the only way to sign in: the password form is hidden
//! privileged_roles = ["admin"]       # never reached by linking an account by email
//!
//! [[upstream]]
//! id = "corp"                        # [a-z0-9_-]{1,32}: /login/upstream/corp
//! kind = "oidc"                      # oidc (discovery from `issuer`) | oauth2 (endpoints given)
//! name = "Acme SSO"                  # "Continue with Acme SSO"
//! issuer = "https://login.acme.example"
//! client_id = "authz"
//! client_secret = "…"                # or AUTHZ_UPSTREAM_CORP_CLIENT_SECRET, or client_secret_file
//! scopes = ["openid", "profile", "email"]
//! params = { prompt = "select_account" }
//! email_domains = ["acme.example"]
//! jit = true
//! roles = ["user"]                   # every provisioned user's roles (plus group_roles)
//! group_roles = { "authz-admins" = "admin" }
//! claims = { groups = "groups" }
//! ```
//!
//! The full reference, with recipes per provider, is `docs/federation.md`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use shared::config::ConfigError;
use shared::secret::ClientSecret;

use super::table::{Lookup, Section, invalid, section};

section! {
    /// `[federation]`: the policy over every upstream identity provider.
    #[serde(default, deny_unknown_fields)]
    pub struct FederationConfig at "federation" {
        /// The id of the one upstream provider people sign in with: the password form and
        /// passkeys are hidden on the sign-in page ("company SSO only"). `ldap`: only directory
        /// users sign in, with the password form (`[ldap]`). Unset: every way.
        only: Option<String> = None;
        /// Roles whose holders are never linked by email to an upstream identity (an explicit
        /// link from the account page still works), comma-separated. Default: `admin`.
        privileged_roles: Vec<String> = vec!["admin".to_owned()];
        /// How long the round trip to an upstream provider may take (its `state`, `nonce` and
        /// PKCE verifier expire after it).
        login_ttl_secs: i64 = 600, range 60..=3600;
    }
}

/// What kind of provider: OpenID Connect (discovery, ID token) or plain OAuth 2.0 (endpoints
/// given, the user from its user-info endpoint).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamKind {
    #[default]
    Oidc,
    Oauth2,
}

impl UpstreamKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oidc => "oidc",
            Self::Oauth2 => "oauth2",
        }
    }
}

/// Client authentication at the provider's token endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic, both halves form-urlencoded first (RFC 6749 §2.3.1).
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A JWT signed with `private_key_file` (RFC 7523 §2.2; `private_key_jwt`, OIDC Core §9).
    PrivateKeyJwt,
}

/// Which upstream claim holds what (dotted paths are not followed: top-level names only).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClaimMapping {
    /// The subject: the one stable identifier (OIDC `sub`; GitHub's numeric `id`).
    pub subject: String,
    /// The username a provisioned user gets.
    pub username: String,
    pub email: String,
    /// The claim saying the address was verified (absent: unverified).
    pub email_verified: String,
    pub name: String,
    /// A list of group names (or one string).
    pub groups: String,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        Self {
            subject: "sub".into(),
            username: "preferred_username".into(),
            email: "email".into(),
            email_verified: "email_verified".into(),
            name: "name".into(),
            groups: "groups".into(),
        }
    }
}

/// One upstream identity provider (`[[upstream]]`).
#[derive(Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Upstream {
    pub id: String,
    pub kind: UpstreamKind,
    /// Shown on the sign-in page: "Continue with <name>".
    pub name: String,
    /// `oidc`: the issuer, whose `/.well-known/openid-configuration` is read (compared
    /// exactly with the document's `issuer`, OIDC Discovery §4.3).
    pub issuer: Option<String>,
    /// `oauth2` (required) — or for `oidc`, overriding discovery.
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
    pub client_id: String,
    /// Also `AUTHZ_UPSTREAM_<ID>_CLIENT_SECRET` (wins), or `client_secret_file`.
    pub client_secret: Option<ClientSecret>,
    pub client_secret_file: Option<PathBuf>,
    /// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
    pub client_auth: ClientAuth,
    /// `private_key_jwt`: the PKCS#8 PEM private key (P-256, RSA ≥ 2048 or Ed25519) whose
    /// public JWK is registered at the provider (`authz upstream list` prints it).
    pub private_key_file: Option<PathBuf>,
    /// Its algorithm: `ES256` (unset), `RS256` or `EdDSA`.
    pub private_key_alg: Option<super::types::SigningAlg>,
    /// The `aud` of the client assertions: default the provider's issuer (RFC 7523bis), or
    /// its token endpoint for `oauth2` providers; some providers want their token endpoint.
    pub client_assertion_audience: Option<String>,
    /// Scopes asked for; default `openid profile email` (`oidc`), none (`oauth2`).
    pub scopes: Option<Vec<String>>,
    /// Extra authorization parameters (`prompt`, `hd`, `access_type`…); never those this
    /// server sets itself (`state`, `nonce`, `code_challenge`, `redirect_uri`…).
    pub params: BTreeMap<String, String>,
    /// Multi-tenant providers (Entra ID `common`): the token issuers accepted, exactly.
    pub allowed_issuers: Vec<String>,
    /// Only addresses in these domains (exact, lower case) may sign in; empty: any.
    pub email_domains: Vec<String>,
    pub claims: ClaimMapping,
    /// Upstream group → local role; the roles named here follow the groups at every sign-in.
    pub group_roles: BTreeMap<String, String>,
    /// Roles of every user this provider provisions (those of `group_roles` are added).
    pub roles: Vec<String>,
    /// Provision a local user at the first sign-in (off: only linked users sign in).
    pub jit: bool,
    /// Link the first sign-in to the local account with the same verified email address
    /// (only when the provider says `email_verified`, and never to a privileged account).
    pub link_by_email: bool,
    /// Believe the provider's multi-factor assertion (`amr` with `mfa`/`otp`/`hwk`, or the
    /// `acr` values in `mfa_acr_values`): the sign-in counts as multi-factor here.
    pub trust_mfa: bool,
    pub mfa_acr_values: Vec<String>,
    /// Keep the provider's access and refresh tokens (sealed) for the resource servers in
    /// `vault_clients`, released by token exchange to a user's token carrying the scope
    /// `upstream:<id>` (which a role must grant, so the consent page asks for it).
    pub vault: bool,
    /// Confidential clients (resource servers) that may exchange a user's token for this
    /// provider's (`audience=<id>`).
    pub vault_clients: Vec<String>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Authorization parameters the server sets itself: never from `params`.
const OWN_PARAMS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "request",
    "request_uri",
    "response_mode",
];

impl Upstream {
    /// The scopes asked for.
    pub fn scope(&self) -> String {
        match (&self.scopes, self.kind) {
            (Some(s), _) => s.join(" "),
            (None, UpstreamKind::Oidc) => "openid profile email".to_owned(),
            (None, UpstreamKind::Oauth2) => String::new(),
        }
    }

    /// The scope a user's token must carry for its holder to obtain this provider's token
    /// (the vault): `upstream:<id>`.
    pub fn vault_scope(&self) -> String {
        format!("upstream:{}", self.id)
    }

    /// The environment variable of this provider's client secret.
    pub fn secret_env(&self) -> String {
        let id: String = self
            .id
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        format!("AUTHZ_UPSTREAM_{id}_CLIENT_SECRET")
    }

    fn check(&self, roles: &BTreeMap<String, Vec<String>>) -> Result<(), String> {
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 32
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !id_ok {
            return Err("id must be 1-32 characters of a-z 0-9 - _".into());
        }
        if self.name.trim().is_empty() || self.name.len() > 64 {
            return Err("name must be 1-64 characters".into());
        }
        if self.client_id.is_empty() {
            return Err("needs a client_id".into());
        }
        let https = |key: &str, v: &Option<String>| -> Result<(), String> {
            match v {
                Some(u) if !is_https_url(u) => Err(format!(
                    "{key} must be an https URL (http only on loopback), without a fragment"
                )),
                _ => Ok(()),
            }
        };
        https("issuer", &self.issuer)?;
        https("authorization_endpoint", &self.authorization_endpoint)?;
        https("token_endpoint", &self.token_endpoint)?;
        https("userinfo_endpoint", &self.userinfo_endpoint)?;
        match self.kind {
            UpstreamKind::Oidc if self.issuer.is_none() => {
                return Err("kind oidc needs an issuer".into());
            }
            UpstreamKind::Oauth2
                if self.authorization_endpoint.is_none()
                    || self.token_endpoint.is_none()
                    || self.userinfo_endpoint.is_none() =>
            {
                return Err(
                    "kind oauth2 needs authorization_endpoint, token_endpoint and \
                            userinfo_endpoint"
                        .into(),
                );
            }
            _ => {}
        }
        if self.kind == UpstreamKind::Oidc && !self.scope().split(' ').any(|s| s == "openid") {
            return Err("kind oidc must ask for the openid scope".into());
        }
        if let Some(p) = self
            .params
            .keys()
            .find(|k| OWN_PARAMS.contains(&k.as_str()))
        {
            return Err(format!("params may not set {p:?} (this server sets it)"));
        }
        for r in self.roles.iter().chain(self.group_roles.values()) {
            if !roles.contains_key(r) {
                return Err(format!("unknown role {r:?}"));
            }
        }
        if self.jit && self.roles.is_empty() {
            return Err("jit needs roles for the users it provisions".into());
        }
        for i in &self.allowed_issuers {
            if !is_https_url(i) {
                return Err(format!("allowed_issuers entry {i:?} is not an https URL"));
            }
        }
        if self.issuer.as_deref().is_some_and(|i| i.contains('{')) {
            return Err(
                "issuer must be a real issuer (a multi-tenant one goes with its \
                        tenant-independent issuer, e.g. …/common/v2.0, and allowed_issuers)"
                    .into(),
            );
        }
        if self.vault && self.vault_clients.is_empty() {
            return Err(
                "vault needs vault_clients (the resource servers that may get the \
                        tokens)"
                    .into(),
            );
        }
        let scope = self.vault_scope();
        if self.vault && !roles.values().any(|s| s.contains(&scope)) {
            return Err(format!(
                "vault needs a role that grants the scope {scope:?} (the user's consent to \
                 release this provider's tokens)"
            ));
        }
        match self.client_auth {
            ClientAuth::PrivateKeyJwt if self.private_key_file.is_none() => {
                return Err("client_auth private_key_jwt needs private_key_file".into());
            }
            ClientAuth::PrivateKeyJwt => {}
            _ if self.client_secret.is_none() => {
                return Err(format!(
                    "needs a client secret: client_secret, client_secret_file or {}",
                    self.secret_env()
                ));
            }
            _ => {}
        }
        Ok(())
    }
}

/// https, or http on loopback (development, tests); no fragment.
fn is_https_url(u: &str) -> bool {
    url::Url::parse(u).is_ok_and(|u| {
        shared::config::https_or_loopback(u.scheme(), u.host_str()) && u.fragment().is_none()
    })
}

impl FederationConfig {
    /// Does holding `role` keep an account from being linked by email?
    pub fn is_privileged_role(&self, role: &str) -> bool {
        self.privileged_roles.iter().any(|r| r == role)
    }
}

/// Each provider's secret from the environment (`AUTHZ_UPSTREAM_<ID>_CLIENT_SECRET`, which
/// wins) or its `client_secret_file`.
pub(crate) fn apply_env(list: &mut [Upstream], env: &Lookup<'_>) -> Result<(), ConfigError> {
    for u in list {
        if let Some((_, secret)) = env.read(&u.secret_env(), &[]) {
            u.client_secret = Some(ClientSecret::new(secret));
        } else if u.client_secret.is_none()
            && let Some(path) = &u.client_secret_file
        {
            let text = std::fs::read_to_string(path).map_err(|e| {
                ConfigError(format!(
                    "upstream {:?}: client_secret_file {}: {e}",
                    u.id,
                    path.display()
                ))
            })?;
            u.client_secret = Some(ClientSecret::new(text.trim().to_owned()));
        }
    }
    Ok(())
}

/// Check every provider and the federation policy against them and the configured `roles`.
pub(crate) fn validate(
    fed: &FederationConfig,
    list: &[Upstream],
    roles: &BTreeMap<String, Vec<String>>,
) -> Result<(), ConfigError> {
    fed.check_ranges()?;
    for (n, u) in list.iter().enumerate() {
        u.check(roles)
            .map_err(|m| ConfigError(format!("upstream {:?}: {m}", u.id)))?;
        if list[..n].iter().any(|o| o.id == u.id) {
            return Err(ConfigError(format!(
                "upstream {:?} is configured twice",
                u.id
            )));
        }
    }
    if let Some(u) = list.iter().find(|u| u.id == super::ldap::PROVIDER) {
        return Err(ConfigError(format!(
            "upstream {:?}: the id is reserved for the [ldap] directory",
            u.id
        )));
    }
    if let Some(only) = &fed.only
        && only != super::ldap::PROVIDER
        && !list.iter().any(|u| &u.id == only)
    {
        return Err(invalid(
            FederationConfig::PATH,
            "only",
            &format!("names no configured [[upstream]] ({only:?})"),
        ));
    }
    if let Some(r) = fed
        .privileged_roles
        .iter()
        .find(|r| !roles.contains_key(*r))
    {
        return Err(invalid(
            FederationConfig::PATH,
            "privileged_roles",
            &format!("unknown role {r:?}"),
        ));
    }
    Ok(())
}
