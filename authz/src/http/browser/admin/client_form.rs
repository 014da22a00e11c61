//! The create form of `/admin/clients`: what it offers (grant types, authentication methods)
//! and how its fields become the `ClientSettings` that `account::admin::add_client` checks.

use crate::account::admin;
use crate::error::{Error, Result};
use crate::oauth::form::Form;
use crate::store::{AuthMethod, ClientSettings, GrantType, Registration};

/// The grants the create form offers: (field suffix, grant, label).
pub const GRANTS: [(&str, GrantType, &str); 4] = [
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
];

/// The authentication methods the create form offers.
pub const AUTH_METHODS: [AuthMethod; 4] = [
    AuthMethod::ClientSecretBasic,
    AuthMethod::ClientSecretPost,
    AuthMethod::None,
    AuthMethod::PrivateKeyJwt,
];

/// An option of the create form (`value`, shown text, selected/checked).
#[derive(Debug, Clone)]
pub struct Choice {
    pub value: &'static str,
    pub label: &'static str,
    pub on: bool,
}

/// The create form's values (kept after a refusal).
#[derive(Debug, Clone, Default)]
pub struct Draft {
    pub name: String,
    pub client_id: String,
    pub auth_method: String,
    pub grants: Vec<String>,
    pub redirect_uris: String,
    pub scope: String,
    pub resources: String,
    pub jwks_uri: String,
    pub skip_consent: bool,
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
