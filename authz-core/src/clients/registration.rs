//! RFC 7591 dynamic client registration: what a client may register for itself.
//!
//! Self-registered clients are limited to the browser flow: `authorization_code` (+
//! `refresh_token`), `response_type=code`, redirect URIs that are https or loopback
//! (RFC 8252 §7.3, RFC 9700 §2.1), and scopes users can be granted. They can never use
//! `client_credentials` or `password`, which would let anyone mint a credential with its own
//! authority. Unknown metadata is ignored (RFC 7591 §2).

use serde::{Deserialize, Serialize};
use shared::scope::OIDC_SCOPES;
use shared::secret::ClientSecret;
use shared::{ErrorCode, ScopeSet};

use crate::clients::ClientServices;
use crate::clients::admin;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::policy::redirect_uri::{self, Registrant};
use crate::store::{AuthMethod, ClientSettings, GrantType, Registration};

/// The registration request (RFC 7591 §2); fields we do not use are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ClientMetadata {
    pub redirect_uris: Option<Vec<String>>,
    /// One method (RFC 7591 §2); a metadata document may list several.
    pub token_endpoint_auth_method: Option<AuthMethods>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub client_name: Option<String>,
    pub scope: Option<String>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// `private_key_jwt` (RFC 7591 §2): where the client's public keys are, or the keys.
    pub jwks_uri: Option<String>,
    pub jwks: Option<serde_json::Value>,
    /// OIDC Registration §2: `web` or `native`.
    pub application_type: Option<String>,
    /// RFC 9449 §5.2: the client always uses DPoP; token requests without a proof are refused.
    pub dpop_bound_access_tokens: Option<bool>,
}

/// `token_endpoint_auth_method`: a string, or (in metadata documents) a list.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum AuthMethods {
    One(String),
    Many(Vec<String>),
}

impl AuthMethods {
    fn list(&self) -> Vec<&str> {
        match self {
            Self::One(m) => vec![m.as_str()],
            Self::Many(list) => list.iter().map(String::as_str).collect(),
        }
    }
}

/// The registration response (RFC 7591 §3.2.1).
#[derive(Debug, Serialize)]
pub struct RegisteredClient {
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<ClientSecret>,
    pub client_id_issued_at: i64,
    /// 0: the secret does not expire.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret_expires_at: Option<i64>,
    pub client_name: String,
    /// `None`: not stated, and the redirect URIs (a mix) do not decide it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_type: Option<&'static str>,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<&'static str>,
    pub response_types: Vec<&'static str>,
    pub token_endpoint_auth_method: &'static str,
    pub scope: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub post_logout_redirect_uris: Vec<String>,
    /// RFC 9449 §5.2, echoed when set.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dpop_bound_access_tokens: bool,
}

fn meta(d: impl Into<String>) -> Error {
    Error::oauth(ErrorCode::InvalidClientMetadata, d.into())
}

fn bad_redirect(d: impl Into<String>) -> Error {
    Error::oauth(ErrorCode::InvalidRedirectUri, d.into())
}

/// Where client metadata comes from: the two ways a client describes itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// RFC 7591 registration: the default method is `client_secret_basic`; an unsupported
    /// grant type is an error (the client can correct its request).
    Registration,
    /// A Client ID Metadata Document: public (`none`, the default) only, since a document is
    /// public; grant types we do not offer such clients are ignored, since the document serves
    /// every authorization server at once (Claude Desktop's lists `jwt-bearer`).
    MetadataDocument,
}

/// The settings a client may have from metadata it wrote itself: the rules above, the same for
/// registration and metadata documents.
pub fn settings(config: &Config, m: ClientMetadata, source: Source) -> Result<ClientSettings> {
    application_type(&m)?;
    let redirect_uris = m.redirect_uris.unwrap_or_default();
    if redirect_uris.is_empty() {
        return Err(bad_redirect("redirect_uris is required"));
    }
    if redirect_uris.len() > 10 {
        return Err(bad_redirect("at most 10 redirect_uris"));
    }
    let post_logout = m.post_logout_redirect_uris.unwrap_or_default();
    if post_logout.len() > 10 {
        return Err(bad_redirect("at most 10 post_logout_redirect_uris"));
    }
    for u in redirect_uris.iter().chain(&post_logout) {
        redirect_uri::validate(u, Registrant::SelfRegistered).map_err(bad_redirect)?;
    }
    let methods = m
        .token_endpoint_auth_method
        .as_ref()
        .map(AuthMethods::list)
        .unwrap_or_default();
    let has_keys = m.jwks_uri.is_some() || m.jwks.is_some();
    let (auth_method, also_public) = match source {
        // RFC 7591 §2: one method; the default is client_secret_basic.
        Source::Registration => match methods.as_slice() {
            [] => (AuthMethod::ClientSecretBasic, false),
            [one] => (one.parse().map_err(meta)?, false),
            _ => return Err(meta("token_endpoint_auth_method must be one method")),
        },
        // A document is public: no secret methods. Of those it names, the strongest we
        // support: private_key_jwt (with keys), and `none` kept beside it when listed, so the
        // client may present either; an assertion it presents is always checked.
        Source::MetadataDocument => {
            if methods.iter().any(|m| m.starts_with("client_secret")) {
                return Err(meta(
                    "a metadata document cannot use client_secret methods: it is public",
                ));
            }
            let none = methods.is_empty() || methods.contains(&"none");
            let pkj = methods.contains(&"private_key_jwt");
            match (pkj, none) {
                (true, _) if has_keys || !none => (AuthMethod::PrivateKeyJwt, none),
                (_, true) => (AuthMethod::None, false),
                _ => {
                    return Err(meta(format!(
                        "token_endpoint_auth_method {methods:?} is not supported for \
                         metadata-document clients; use \"none\" (public client with PKCE) \
                         or \"private_key_jwt\""
                    )));
                }
            }
        }
    };
    let mut grant_types = Vec::new();
    for g in m
        .grant_types
        .unwrap_or_else(|| vec!["authorization_code".to_owned()])
    {
        match g.parse::<GrantType>() {
            Ok(g @ (GrantType::AuthorizationCode | GrantType::RefreshToken)) => {
                if !grant_types.contains(&g) {
                    grant_types.push(g);
                }
            }
            _ if source == Source::MetadataDocument => {}
            _ => {
                return Err(meta(format!(
                    "grant type {g:?} cannot be registered; use authorization_code and refresh_token"
                )));
            }
        }
    }
    if !grant_types.contains(&GrantType::AuthorizationCode) {
        return Err(meta("grant_types must include authorization_code"));
    }
    let response_types = m.response_types.unwrap_or_else(|| vec!["code".to_owned()]);
    if response_types.iter().any(|r| r != "code") || response_types.is_empty() {
        return Err(meta("only the response type \"code\" is supported"));
    }
    // Scopes: what users can be granted at all (role scopes and OIDC scopes).
    let grantable = config
        .role_scopes(config.roles.keys().map(String::as_str))
        .union(&ScopeSet::from_tokens(OIDC_SCOPES).unwrap_or_default());
    let scopes = match m.scope.as_deref() {
        None | Some("") => grantable,
        Some(raw) => {
            let req = ScopeSet::parse(raw).map_err(|e| meta(format!("scope: {e}")))?;
            let unknown = req.difference(&grantable);
            if !unknown.is_empty() {
                return Err(meta(format!("scope: not available to clients: {unknown}")));
            }
            req
        }
    };
    let name = match m.client_name.as_deref().map(str::trim) {
        None | Some("") => "Unnamed application".to_owned(),
        Some(n) if n.chars().count() > 100 || n.chars().any(char::is_control) => {
            return Err(meta("client_name must be at most 100 printable characters"));
        }
        Some(n) => n.to_owned(),
    };
    let (jwks_uri, jwks) = match auth_method {
        AuthMethod::PrivateKeyJwt => (m.jwks_uri, m.jwks.map(|v| v.to_string())),
        _ => (None, None),
    };
    Ok(ClientSettings {
        jwks_uri,
        jwks,
        also_public,
        name,
        auth_method,
        grant_types,
        redirect_uris,
        scopes,
        // Self-described clients get tokens for the default resource (the MCP server).
        resources: vec![config.default_resource.clone()],
        // MCP clients rarely ask for offline_access but need to stay signed in.
        always_issue_refresh: true,
        post_logout_redirect_uris: post_logout,
        skip_consent: false,
        registration: match source {
            Source::Registration => Registration::Dynamic,
            Source::MetadataDocument => Registration::MetadataDocument,
        },
        dpop_bound_access_tokens: m.dpop_bound_access_tokens.unwrap_or(false),
        ..Default::default()
    })
    .and_then(|settings| {
        if settings.auth_method == AuthMethod::PrivateKeyJwt {
            crate::clients::assertion::validate_key_source(&settings).map_err(|e| match e {
                Error::Invalid(msg) => meta(msg),
                other => other,
            })?;
        }
        Ok(settings)
    })
}

/// Is `uri` a loopback http redirect (RFC 8252 §7.3)?
fn is_loopback(uri: &str) -> bool {
    url::Url::parse(uri).is_ok_and(|u| {
        u.scheme() == "http" && matches!(u.host_str(), Some("127.0.0.1" | "[::1]" | "localhost"))
    })
}

/// OIDC Registration §2 `application_type`, checked against the redirect URIs when stated:
/// `web` clients redirect to https only, `native` ones to loopback. Absent, it is `native` when
/// every redirect URI is loopback and `web` when every one is https; a mix decides nothing
/// (`None`) and is accepted as before. OIDC's default is `web`, but MCP clients (which run on
/// the user's machine) register loopback redirects without saying so, and refusing them would
/// break every one.
pub fn application_type(m: &ClientMetadata) -> Result<Option<&'static str>> {
    let uris = m.redirect_uris.as_deref().unwrap_or_default();
    let all_loopback = !uris.is_empty() && uris.iter().all(|u| is_loopback(u));
    let all_https = !uris.is_empty() && uris.iter().all(|u| u.starts_with("https://"));
    match m.application_type.as_deref() {
        None if all_loopback => Ok(Some("native")),
        None if all_https => Ok(Some("web")),
        None => Ok(None),
        Some("web") => {
            if let Some(u) = uris.iter().find(|u| !u.starts_with("https://")) {
                return Err(bad_redirect(format!(
                    "a web application redirects to https only, not {u:?}; register it with \
                     application_type \"native\" if it runs on the user's device"
                )));
            }
            Ok(Some("web"))
        }
        Some("native") => {
            if let Some(u) = uris.iter().find(|u| u.starts_with("https://")) {
                return Err(bad_redirect(format!(
                    "a native application redirects to a loopback address, not {u:?}; \
                     register it as application_type \"web\""
                )));
            }
            Ok(Some("native"))
        }
        Some(other) => Err(meta(format!(
            "application_type {other:?} is not supported; use \"web\" or \"native\""
        ))),
    }
}

/// Register a client from its metadata.
pub async fn register(svc: ClientServices<'_>, m: ClientMetadata) -> Result<RegisteredClient> {
    let application_type = application_type(&m)?;
    let new = settings(svc.config, m, Source::Registration)?;
    let (client, secret) = admin::add_client(svc, "registration", None, new)
        .await
        .map_err(|e| match e {
            Error::Invalid(msg) => meta(msg),
            other => other,
        })?;
    let settings = client.settings;
    Ok(RegisteredClient {
        client_secret_expires_at: secret.as_ref().map(|_| 0),
        client_secret: secret,
        client_id: client.id,
        client_id_issued_at: client.created_at,
        grant_types: settings.grant_types.iter().map(|g| g.as_str()).collect(),
        response_types: vec!["code"],
        token_endpoint_auth_method: settings.auth_method.as_str(),
        scope: settings.scopes.to_string(),
        client_name: settings.name,
        application_type,
        redirect_uris: settings.redirect_uris,
        post_logout_redirect_uris: settings.post_logout_redirect_uris,
        dpop_bound_access_tokens: settings.dpop_bound_access_tokens,
    })
}
