//! The askama templates (`templates/*.html`) as typed structs. Everything rendered is escaped
//! by askama, so user- and client-supplied names cannot inject markup.

use askama::Template;
use shared::secret::IdToken;

#[derive(Debug, Template)]
#[template(path = "login.html")]
pub(crate) struct LoginPage {
    pub client_name: String,
    /// Why a sign-in is asked for, instead of the usual line (step-up, re-authentication).
    pub reason: Option<String>,
    pub error: Option<String>,
    pub username: String,
    pub csrf: String,
    /// The hidden field carrying where the sign-in continues: (`request`|`next`, value).
    pub target: (String, String),
    /// "Continue with <name>": (link, name) per upstream identity provider.
    pub upstreams: Vec<(String, String)>,
    /// Offer the password form (and passkeys): not when `federation.only` names a provider.
    pub password: bool,
}

/// The second step of a sign-in: the code from the authenticator app.
#[derive(Debug, Template)]
#[template(path = "signin_code.html")]
pub(crate) struct SignInCodePage {
    pub client_name: String,
    pub username: String,
    pub error: Option<String>,
    pub csrf: String,
    pub target: (String, String),
}

/// A new password after an administrator's reset.
#[derive(Debug, Template)]
#[template(path = "new_password.html")]
pub(crate) struct NewPasswordPage {
    pub username: String,
    pub min_length: usize,
    pub error: Option<String>,
    pub csrf: String,
    pub target: (String, String),
}

/// A page that tells the user something, with an optional link onwards (href, label).
#[derive(Debug, Template)]
#[template(path = "message.html")]
pub(crate) struct MessagePage {
    pub title: String,
    pub message: String,
    pub link: Option<(String, String)>,
}

#[derive(Debug)]
pub(crate) struct ScopeView {
    pub name: String,
    pub description: String,
}

impl ScopeView {
    /// Each scope of `scope` with its words for people (`policy::scope::describe_in`).
    pub fn list(config: &authz_core::config::Config, scope: &shared::ScopeSet) -> Vec<Self> {
        scope
            .iter()
            .map(|s| Self {
                name: s.as_str().to_owned(),
                description: authz_core::policy::scope::describe_in(config, s.as_str()),
            })
            .collect()
    }
}

#[derive(Debug, Template)]
#[template(path = "consent.html")]
pub(crate) struct ConsentPage {
    pub client_name: String,
    /// The host of a metadata-document client's URL: who vouches for the name above.
    pub client_host: Option<String>,
    /// Neither first-party nor vouched for: self-registered and metadata-document clients.
    pub unverified: bool,
    /// Every redirect URI is loopback: the application runs on the user's own machine.
    pub local_only: bool,
    pub redirect_host: String,
    pub username: String,
    pub resource: Option<String>,
    pub scopes: Vec<ScopeView>,
    pub csrf: String,
    pub request: String,
}

#[derive(Debug, Template)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage {
    pub title: String,
    pub message: String,
    pub detail: Option<String>,
}

#[derive(Debug, Template)]
#[template(path = "logout.html")]
pub(crate) struct LogoutPage {
    pub csrf: String,
    pub client_name: Option<String>,
    pub id_token_hint: IdToken,
    pub post_logout_redirect_uri: String,
    pub state: String,
    pub client_id: String,
}

#[derive(Debug, Template)]
#[template(path = "logged_out.html")]
pub(crate) struct LoggedOutPage;

/// `prompt=select_account` (OIDC Core §3.1.2.1): continue as the signed-in user, or sign in
/// as someone else. Both choices are plain authorization requests (links), so the page needs
/// no form and no CSRF token.
#[derive(Debug, Template)]
#[template(path = "select_account.html")]
pub(crate) struct SelectAccountPage {
    pub client_name: String,
    pub username: String,
    pub continue_url: String,
    pub switch_url: String,
}
