//! Stored records. Word lists are stored space-separated (scopes, roles, grants: their syntax
//! has no spaces) and URI lists as JSON arrays, so the same schema works on SQLite and
//! PostgreSQL and no value can smuggle in a second one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use shared::ScopeSet;

/// RFC 6749 grant types the server knows. `grant_type` is parsed into this, never compared as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum GrantType {
    #[serde(rename = "client_credentials")]
    ClientCredentials,
    #[serde(rename = "password")]
    Password,
    #[serde(rename = "refresh_token")]
    RefreshToken,
    /// RFC 6749 §4.1 with PKCE (RFC 7636), the browser flow.
    #[serde(rename = "authorization_code")]
    AuthorizationCode,
    /// RFC 8693 token exchange (resource servers calling the management API for a user).
    #[serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange,
    /// RFC 8628 device authorization grant (devices without a browser).
    #[serde(rename = "urn:ietf:params:oauth:grant-type:device_code")]
    DeviceCode,
    /// RFC 7523 §2.1 JWT bearer assertion — here Identity Assertion JWT Authorization Grants
    /// (ID-JAG, the MCP enterprise-managed authorization extension).
    #[serde(rename = "urn:ietf:params:oauth:grant-type:jwt-bearer")]
    JwtBearer,
}

impl GrantType {
    pub const ALL: [GrantType; 7] = [
        Self::ClientCredentials,
        Self::Password,
        Self::RefreshToken,
        Self::AuthorizationCode,
        Self::TokenExchange,
        Self::DeviceCode,
        Self::JwtBearer,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ClientCredentials => "client_credentials",
            Self::Password => "password",
            Self::RefreshToken => "refresh_token",
            Self::AuthorizationCode => "authorization_code",
            Self::TokenExchange => "urn:ietf:params:oauth:grant-type:token-exchange",
            Self::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
            Self::JwtBearer => "urn:ietf:params:oauth:grant-type:jwt-bearer",
        }
    }
}

impl FromStr for GrantType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| format!("unsupported grant type {s:?}"))
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a client authenticates at the token endpoint (RFC 7591 §2 `token_endpoint_auth_method`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthMethod {
    #[default]
    #[serde(rename = "client_secret_basic")]
    ClientSecretBasic,
    #[serde(rename = "client_secret_post")]
    ClientSecretPost,
    /// A public client: no secret (RFC 6749 §2.1).
    #[serde(rename = "none")]
    None,
    /// A JWT signed with the client's private key (RFC 7523 §2.2, OIDC Core §9); its public
    /// keys are the client's `jwks` or `jwks_uri`.
    #[serde(rename = "private_key_jwt")]
    PrivateKeyJwt,
}

impl AuthMethod {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::None => "none",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

impl FromStr for AuthMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "client_secret_basic" => Ok(Self::ClientSecretBasic),
            "client_secret_post" => Ok(Self::ClientSecretPost),
            "none" => Ok(Self::None),
            "private_key_jwt" => Ok(Self::PrivateKeyJwt),
            o => Err(format!(
                "unknown auth method {o:?} (client_secret_basic, client_secret_post, none, \
                 private_key_jwt)"
            )),
        }
    }
}

/// What a client is registered with: everything the one who registers it decides (an
/// administrator, the seed, dynamic registration, API-key creation). `Client` is this plus
/// what the server keeps about it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientSettings {
    pub name: String,
    pub auth_method: AuthMethod,
    pub grant_types: Vec<GrantType>,
    pub redirect_uris: Vec<String>,
    /// The most this client may ever be granted.
    pub scopes: ScopeSet,
    /// Resource URIs (audiences) it may ask tokens for (RFC 8707).
    pub resources: Vec<String>,
    /// Issue refresh tokens even without `offline_access`.
    pub always_issue_refresh: bool,
    /// Where RP-initiated logout may send the browser (OIDC RP-Initiated Logout §3).
    pub post_logout_redirect_uris: Vec<String>,
    /// A first-party client: users are not asked to consent.
    pub skip_consent: bool,
    /// How the client came to exist.
    pub registration: Registration,
    /// Set for API keys: the user the key acts for.
    pub owner_id: Option<String>,
    /// API keys expire; other clients do not.
    pub expires_at: Option<i64>,
    /// May call the introspection endpoint (RFC 7662).
    pub may_introspect: bool,
    /// The resource URI this client serves: token exchange accepts subject tokens with this
    /// audience from it (RFC 8693 §2.1).
    pub serves_resource: Option<String>,
    /// `private_key_jwt`: where the client's public keys are published (fetched through the
    /// guarded fetcher), or the keys themselves (a JWK Set, as JSON).
    pub jwks_uri: Option<String>,
    pub jwks: Option<String>,
    /// A `private_key_jwt` metadata-document client whose document also lists `none`: it may
    /// present either (an assertion it presents is always checked). Treated as public.
    pub also_public: bool,
    /// RFC 9449 §5.2 `dpop_bound_access_tokens`: every token request must carry a DPoP proof.
    pub dpop_bound_access_tokens: bool,
    /// RFC 9126 §6 `require_pushed_authorization_requests`: `/authorize` only with a
    /// `request_uri` from `/par`.
    pub require_pushed_authorization_requests: bool,
}

/// An OAuth client registration: its settings (read through `Deref`: `client.scopes`) and
/// what the server keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: String,
    /// SHA-256 hex of the secret; `None` for public clients.
    pub secret_hash: Option<String>,
    pub settings: ClientSettings,
    /// A revoked client (API key) authenticates no more.
    pub revoked_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// A metadata-document client: when its document was last fetched, and until when that
    /// fetch is fresh (its caching headers, clamped).
    pub metadata_fetched_at: Option<i64>,
    pub metadata_expires_at: Option<i64>,
    /// When the client last got tokens (kept for self-registered and metadata-document
    /// clients, at most hourly): what pruning unused registrations goes by.
    pub last_used_at: Option<i64>,
}

impl std::ops::Deref for Client {
    type Target = ClientSettings;
    fn deref(&self) -> &ClientSettings {
        &self.settings
    }
}

/// Who registered a client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    /// An administrator (CLI, seed).
    #[default]
    Admin,
    /// The client itself, through RFC 7591 dynamic registration.
    Dynamic,
    /// A Client ID Metadata Document: the `client_id` is the document's https URL, and the
    /// settings are what the document said when last fetched.
    #[serde(rename = "metadata_document")]
    MetadataDocument,
}

impl Registration {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Dynamic => "dynamic",
            Self::MetadataDocument => "metadata_document",
        }
    }
}

impl FromStr for Registration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Self::Admin),
            "dynamic" => Ok(Self::Dynamic),
            "metadata_document" => Ok(Self::MetadataDocument),
            o => Err(format!("unknown registration kind {o:?}")),
        }
    }
}

impl Client {
    pub(crate) fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }
    /// A public client (RFC 6749 §2.1): nothing proves its identity. Also one that may
    /// authenticate with `none` beside `private_key_jwt`.
    pub fn is_public(&self) -> bool {
        self.auth_method == AuthMethod::None || self.also_public
    }
    /// Neither revoked nor expired.
    pub fn is_live(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub username: String,
    /// argon2id PHC string; empty: no password (a user an upstream provider provisioned).
    pub password_hash: String,
    pub roles: Vec<String>,
    /// Released with the `email` scope (OIDC Core §5.4).
    pub email: Option<String>,
    /// The name an upstream provider or the directory asserts (kept up to date at each sign-in
    /// through it); the `name` claim is the username without one.
    pub display_name: Option<String>,
    pub disabled_at: Option<i64>,
    /// When the password was last reset or changed: grants authenticated before are void.
    pub credentials_changed_at: Option<i64>,
    /// An admin reset the password: the user chooses a new one at the next sign-in.
    pub password_change_required: bool,
    /// Bumped by every remedy that removes a second factor (two-factor reset, a passkey's
    /// removal): a sign-in that read an older value gets no session.
    pub factors_epoch: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl User {
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == "admin")
    }
    pub fn is_enabled(&self) -> bool {
        self.disabled_at.is_none()
    }
    /// Has the user a password (users provisioned by an upstream provider have none until an
    /// administrator sets one)?
    pub fn has_password(&self) -> bool {
        !self.password_hash.is_empty()
    }
    /// The `name` claim (OIDC Core §5.1): the asserted display name, else the username.
    pub fn name(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.username)
    }
    /// Was a grant authenticated at `auth_time` made with the current credentials?
    pub fn credentials_current_at(&self, auth_time: i64) -> bool {
        self.credentials_changed_at.is_none_or(|c| auth_time >= c)
    }
}

/// One refresh token of a rotation family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    /// SHA-256 hex of the token; the token itself is never stored.
    pub token_hash: String,
    pub family_id: String,
    pub client_id: String,
    pub user_id: String,
    /// The scope of the grant; refreshes may narrow, never widen (RFC 6749 §6).
    pub scope: String,
    /// Resources the grant covers (RFC 8707 §2.2); the first is the default audience.
    pub resources: Vec<String>,
    pub auth_time: i64,
    /// The browser session the grant came from (logout revokes it).
    pub sid: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    /// The family's absolute end.
    pub family_expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    /// RFC 9449 §5: the DPoP key (thumbprint, base64url) a public client's refresh token is
    /// bound to; refreshing needs a proof with that key.
    pub dpop_jkt: Option<String>,
}

/// State of a signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// Published, not signing yet: becomes active at `activate_at`.
    Next,
    Active,
    /// Published until `publish_until` (every token it signed has expired by then).
    Retired,
    /// Withdrawn (`authz keys revoke`): never published again, its private half wiped.
    Withdrawn,
}

impl KeyStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Next => "next",
            Self::Active => "active",
            Self::Retired => "retired",
            Self::Withdrawn => "withdrawn",
        }
    }
}

/// What a signing key signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPurpose {
    /// Access tokens (and ID tokens, when it is RS256).
    Access,
    /// ID tokens only: the RS256 key kept when access tokens use ES256 or EdDSA, so RS256 (the
    /// OIDC default every relying party supports) is always available for ID tokens.
    IdToken,
}

impl KeyPurpose {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::IdToken => "id_token",
        }
    }
}

impl FromStr for KeyPurpose {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "access" => Ok(Self::Access),
            "id_token" => Ok(Self::IdToken),
            o => Err(format!("unknown key purpose {o:?}")),
        }
    }
}

/// A signing key as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub kid: String,
    pub alg: String,
    pub purpose: KeyPurpose,
    /// AES-256-GCM (nonce ‖ ciphertext ‖ tag) of the PKCS#8 DER, with `kid` as AAD.
    pub private_key_enc: Vec<u8>,
    pub public_jwk: String,
    pub status: KeyStatus,
    pub created_at: i64,
    pub retired_at: Option<i64>,
    pub publish_until: Option<i64>,
    /// For a `Next` key: when it starts signing.
    pub activate_at: Option<i64>,
}

impl StoredKey {
    /// Is the key in the JWKS at `now` (pending, active, or retired with tokens alive)?
    pub fn is_published(&self, now: i64) -> bool {
        match self.status {
            KeyStatus::Next | KeyStatus::Active => true,
            KeyStatus::Retired => self.publish_until.is_some_and(|t| t > now),
            KeyStatus::Withdrawn => false,
        }
    }
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("purpose", &self.purpose)
            .field("status", &self.status)
            .field("activate_at", &self.activate_at)
            .finish_non_exhaustive()
    }
}

/// An event a resource server reported (`POST /resource-events`), to be audited once.
#[derive(Debug, Clone, PartialEq)]
pub struct Reported {
    /// (its id at the reporter, the time it reported): the same key twice is one event.
    /// `None` (a reporter that sends no ids): recorded every time it is sent.
    pub key: Option<(i64, i64)>,
    pub event: AuditEvent,
}

/// An audit event. `details` never holds a secret, token or password.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEvent {
    pub id: Option<i64>,
    pub ts: i64,
    pub kind: String,
    pub outcome: Outcome,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub details: serde_json::Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

impl AuditEvent {
    pub fn new(ts: i64, kind: &str, outcome: Outcome) -> Self {
        Self {
            id: None,
            ts,
            kind: kind.to_owned(),
            outcome,
            actor: None,
            subject: None,
            client_id: None,
            ip: None,
            details: serde_json::Value::Null,
        }
    }
    pub fn actor(mut self, actor: impl Into<String>) -> Self {
        self.actor = Some(actor.into());
        self
    }
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }
    pub fn client(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// A browser session (server-side row; the cookie holds a random value whose hash is the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id_hash: String,
    /// Public session id: the ID token's `sid` (OIDC Front-Channel Logout §3).
    pub sid: String,
    pub user_id: String,
    pub auth_time: i64,
    pub created_at: i64,
    pub last_seen_at: i64,
    /// Absolute end.
    pub expires_at: i64,
    pub ended_at: Option<i64>,
    /// For a cookie-less grant session (password grant): the client whose grant it is.
    pub client_id: Option<String>,
    /// How the user signed in (RFC 8176 values: `pwd`, `otp`).
    pub amr: Vec<String>,
    /// The browser that signed in (for the account's "Sessions" page; truncated).
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

/// Do these RFC 8176 methods make a multi-factor sign-in?
pub fn is_multi_factor(amr: &[String]) -> bool {
    amr.iter().any(|m| m == "otp" || m == "mfa")
}

impl Session {
    pub fn is_live(&self) -> bool {
        self.ended_at.is_none()
    }
    /// Signed in with a second factor (RFC 8176 `otp`, or `mfa`: a passkey with user
    /// verification, alone or after the password).
    pub fn is_multi_factor(&self) -> bool {
        crate::store::is_multi_factor(&self.amr)
    }
}

/// An authorization code (RFC 6749 §4.1.2), stored by hash, bound to everything it was issued
/// with (RFC 9700 §2.1.1, §4.5).
#[derive(Clone, PartialEq, Eq)]
pub struct AuthCode {
    pub code_hash: String,
    pub client_id: String,
    pub user_id: String,
    pub sid: String,
    pub redirect_uri: String,
    /// BASE64URL(SHA-256(code_verifier)) (RFC 7636 §4.2, S256 only).
    pub code_challenge: String,
    pub resource: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub auth_time: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    /// The refresh family issued from this code, revoked if the code is replayed.
    pub family_id: Option<String>,
    /// The DPoP key the code is bound to (RFC 9449 §10 `dpop_jkt`, base64url thumbprint).
    pub dpop_jkt: Option<String>,
}

impl fmt::Debug for AuthCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthCode")
            .field("client_id", &self.client_id)
            .field("user_id", &self.user_id)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Failed-login bookkeeping for one (normalised) username.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoginThrottle {
    pub failures: i64,
    pub window_start: i64,
    pub lockouts: i64,
    pub locked_until: Option<i64>,
}
