//! The token issuer: the only code that mints access tokens (RFC 9068 JWTs) and refresh
//! tokens. Grants decide *what* to issue; this decides *how* (after fosite's token strategy).

use std::sync::Arc;

use serde::Serialize;
use shared::claims::CLIENT_SUBJECT_PREFIX;
use shared::secret::{AccessToken, RefreshToken};
use shared::{ACCESS_TOKEN_TYP, AccessTokenClaims, ScopeSet};

use crate::crypto::{random_bytes, random_id, sha256_hex};
use crate::error::Result;
use crate::keys::KeyRing;
use crate::store::{Client, RefreshTokenRecord, User};

/// Who a token speaks for.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// A user, through a client.
    User { user: &'a User, auth_time: i64 },
    /// A client acting for itself (client_credentials).
    Client,
}

/// Mints tokens.
#[derive(Debug, Clone)]
pub struct TokenIssuer {
    keys: Arc<KeyRing>,
    issuer: String,
    access_ttl: i64,
    refresh_ttl: i64,
    refresh_absolute_ttl: i64,
}

/// The successful token response (RFC 6749 §5.1).
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// A freshly minted refresh token: the value for the client, the record for storage.
#[derive(Debug)]
pub struct NewRefreshToken {
    pub token: RefreshToken,
    pub record: RefreshTokenRecord,
}

impl TokenIssuer {
    pub fn new(keys: Arc<KeyRing>, config: &crate::config::Config) -> Self {
        Self {
            keys,
            issuer: config.issuer.clone(),
            access_ttl: config.access_token_ttl_secs,
            refresh_ttl: config.refresh_token_ttl_secs,
            refresh_absolute_ttl: config.refresh_token_absolute_ttl_secs,
        }
    }

    pub fn access_ttl(&self) -> i64 {
        self.access_ttl
    }

    /// Sign an access token for `aud` (RFC 9068 §2.2).
    pub fn access_token(
        &self,
        subject: Subject<'_>,
        client: &Client,
        aud: &str,
        scope: &ScopeSet,
        now: i64,
    ) -> Result<AccessToken> {
        let (sub, auth_time, username, roles) = match subject {
            Subject::User { user, auth_time } => (
                user.id.clone(),
                Some(auth_time),
                Some(user.username.clone()),
                user.roles.clone(),
            ),
            Subject::Client => (
                format!("{CLIENT_SUBJECT_PREFIX}{}", client.id),
                None,
                None,
                Vec::new(),
            ),
        };
        let claims = AccessTokenClaims {
            iss: self.issuer.clone(),
            sub,
            aud: aud.to_owned(),
            exp: now + self.access_ttl,
            iat: now,
            jti: random_id(""),
            client_id: client.id.clone(),
            scope: scope.to_string(),
            auth_time,
            preferred_username: username,
            roles,
        };
        let keys = self.keys.current();
        keys.active
            .sign_jwt(ACCESS_TOKEN_TYP, &claims)
            .map(AccessToken::new)
    }

    /// A new refresh token. `family` continues a rotation family (with its absolute end);
    /// `None` starts one.
    #[allow(clippy::too_many_arguments)]
    pub fn refresh_token(
        &self,
        client: &Client,
        user: &User,
        scope: &str,
        resources: Vec<String>,
        auth_time: i64,
        family: Option<(&str, i64)>,
        now: i64,
    ) -> NewRefreshToken {
        use base64::Engine;
        let token = format!(
            "rt_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>())
        );
        let (family_id, family_expires_at) = match family {
            Some((id, end)) => (id.to_owned(), end),
            None => (random_id("rf_"), now + self.refresh_absolute_ttl),
        };
        let record = RefreshTokenRecord {
            token_hash: sha256_hex(&token),
            family_id,
            client_id: client.id.clone(),
            user_id: user.id.clone(),
            scope: scope.to_owned(),
            resources,
            auth_time,
            created_at: now,
            expires_at: (now + self.refresh_ttl).min(family_expires_at),
            family_expires_at,
            used_at: None,
            revoked_at: None,
        };
        NewRefreshToken {
            token: RefreshToken::new(token),
            record,
        }
    }

    /// Assemble the response body.
    pub fn response(
        &self,
        access: AccessToken,
        scope: &ScopeSet,
        refresh: Option<RefreshToken>,
    ) -> TokenResponse {
        TokenResponse {
            access_token: access.expose().to_owned(),
            token_type: "Bearer",
            expires_in: self.access_ttl,
            scope: scope.to_string(),
            refresh_token: refresh.map(|r| r.expose().to_owned()),
        }
    }
}
