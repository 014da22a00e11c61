//! The create form of `/admin/clients`: what it offers (grant types, authentication methods)
//! and how its fields become the `ClientSettings` that `clients::admin::add_client` checks.

use authz_core::clients::admin;
use authz_core::error::{Error, Result};
use authz_core::protocol::form::Form;
use authz_core::store::{AuthMethod, ClientSettings, GrantType, Registration};

/// The grants the create form offers: (field suffix, grant, label).
pub(crate) const GRANTS: [(&str, GrantType, &str); 7] = [
    (
        "authorization_code",
        GrantType::AuthorizationCode,
        "authorization_code (browser sign-in)",
    ),
    ("refresh_token", GrantType::RefreshToken, "refresh_token"),
    (
        "client_credentials",
        GrantType::ClientCredentials,
        "client_credentials (service)",
    ),
    ("password", GrantType::Password, "password (legacy)"),
    (
        "token_exchange",
        GrantType::TokenExchange,
        "token exchange (a resource server acting for its users, RFC 8693)",
    ),
    (
        "device_code",
        GrantType::DeviceCode,
        "device_code (devices without a browser, RFC 8628)",
    ),
    (
        "jwt_bearer",
        GrantType::JwtBearer,
        "jwt-bearer (enterprise ID-JAG assertions, RFC 7523)",
    ),
];

/// The authentication methods the create form offers.
pub(crate) const AUTH_METHODS: [AuthMethod; 4] = [
    AuthMethod::ClientSecretBasic,
    AuthMethod::ClientSecretPost,
    AuthMethod::None,
    AuthMethod::PrivateKeyJwt,
];

/// An option of the create form (`value`, shown text, selected/checked).
#[derive(Debug, Clone)]
pub(crate) struct Choice {
    pub value: &'static str,
    pub label: &'static str,
    pub on: bool,
}

/// The create form's values (kept after a refusal).
#[derive(Debug, Clone, Default)]
pub(crate) struct Draft {
    pub name: String,
    pub client_id: String,
    pub auth_method: String,
    pub grants: Vec<String>,
    pub redirect_uris: String,
    pub scope: String,
    pub resources: String,
    pub jwks_uri: String,
    pub skip_consent: bool,
    /// The resource server this client is (RFC 8693 token exchange, `/resource-events`).
    pub serves_resource: String,
    pub may_introspect: bool,
    /// RFC 9449 §5.2: every token request must carry a DPoP proof.
    pub dpop_bound: bool,
    /// RFC 9126 §6: authorization requests only through `/par`.
    pub require_par: bool,
}

/// Words separated by spaces, commas or newlines.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Draft {
    pub fn read(form: &Form) -> Self {
        let text = |n: &str| form.get(n).unwrap_or("").trim().to_owned();
        Self {
            name: text("name"),
            client_id: text("client_id"),
            auth_method: text("auth_method"),
            grants: GRANTS
                .iter()
                .filter(|(key, _, _)| form.get(&format!("grant-{key}")).is_some())
                .map(|(key, _, _)| (*key).to_owned())
                .collect(),
            redirect_uris: text("redirect_uris"),
            scope: text("scope"),
            resources: text("resources"),
            jwks_uri: text("jwks_uri"),
            skip_consent: form.get("skip_consent").is_some(),
            serves_resource: text("serves_resource"),
            may_introspect: form.get("may_introspect").is_some(),
            dpop_bound: form.get("dpop_bound").is_some(),
            require_par: form.get("require_par").is_some(),
        }
    }

    /// The settings to register, or why they cannot be.
    pub fn settings(&self) -> Result<(Option<String>, ClientSettings)> {
        let auth_method = self
            .auth_method
            .parse::<AuthMethod>()
            .map_err(Error::Invalid)?;
        let grant_types = GRANTS
            .iter()
            .filter(|(key, _, _)| self.grants.iter().any(|g| g == key))
            .map(|(_, g, _)| *g)
            .collect();
        let settings = ClientSettings {
            name: self.name.clone(),
            auth_method,
            grant_types,
            redirect_uris: words(&self.redirect_uris),
            scopes: admin::parse_scopes(&self.scope)?,
            resources: words(&self.resources),
            skip_consent: self.skip_consent,
            jwks_uri: (!self.jwks_uri.is_empty()).then(|| self.jwks_uri.clone()),
            serves_resource: (!self.serves_resource.is_empty())
                .then(|| self.serves_resource.clone()),
            may_introspect: self.may_introspect,
            dpop_bound_access_tokens: self.dpop_bound,
            require_pushed_authorization_requests: self.require_par,
            registration: Registration::Admin,
            ..ClientSettings::default()
        };
        let id = (!self.client_id.is_empty()).then(|| self.client_id.clone());
        Ok((id, settings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_create_form_reads_into_settings() {
        let body = b"name=Web+app&client_id=&auth_method=client_secret_post\
            &grant-authorization_code=on&grant-refresh_token=on&grant-bogus=on\
            &redirect_uris=https%3A%2F%2Fa.example%2Fcb%0D%0Ahttps%3A%2F%2Fb.example%2Fcb\
            &scope=openid%2Cprofile&resources=&skip_consent=on";
        let form = Form::parse(body).expect("form");
        let draft = Draft::read(&form);
        assert_eq!(draft.grants, vec!["authorization_code", "refresh_token"]);
        let (id, s) = draft.settings().expect("settings");
        assert_eq!(id, None);
        assert_eq!(s.name, "Web app");
        assert_eq!(s.auth_method, AuthMethod::ClientSecretPost);
        assert_eq!(
            s.grant_types,
            vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
        );
        assert_eq!(
            s.redirect_uris,
            vec!["https://a.example/cb", "https://b.example/cb"]
        );
        assert_eq!(s.scopes.to_string(), "openid profile");
        assert!(s.resources.is_empty());
        assert!(s.skip_consent);
        assert_eq!(s.registration, Registration::Admin);
        assert_eq!(s.serves_resource, None, "empty is none");
        assert!(!s.may_introspect && !s.dpop_bound_access_tokens);
        assert!(!s.require_pushed_authorization_requests);

        // A resource server that exchanges tokens, introspects, and a DPoP + PAR client.
        let body = b"name=Notes+MCP&auth_method=client_secret_basic&grant-token_exchange=on\
            &serves_resource=https%3A%2F%2Fmcp.example%2Fmcp&may_introspect=on\
            &dpop_bound=on&require_par=on&scope=profile%3Aread";
        let (_, rs) = Draft::read(&Form::parse(body).expect("form"))
            .settings()
            .expect("settings");
        assert_eq!(rs.grant_types, vec![GrantType::TokenExchange]);
        assert_eq!(
            rs.serves_resource.as_deref(),
            Some("https://mcp.example/mcp")
        );
        assert!(rs.may_introspect);
        assert!(rs.dpop_bound_access_tokens);
        assert!(rs.require_pushed_authorization_requests);

        let bad = Draft {
            auth_method: "magic".into(),
            ..Draft::default()
        };
        assert!(matches!(bad.settings(), Err(Error::Invalid(_))));
        let bad_scope = Draft {
            auth_method: "none".into(),
            scope: "bad\"scope".into(),
            ..Draft::default()
        };
        assert!(bad_scope.settings().is_err());
        assert_eq!(words(" a,b\r\n c "), vec!["a", "b", "c"]);
    }
}
