//! The token issuer: the only code that mints access tokens (RFC 9068 JWTs) and refresh
//! tokens. Grants decide *what* to issue; this decides *how* (after fosite's token strategy).

use std::sync::Arc;

use serde::Serialize;
use shared::claims::{CLIENT_SUBJECT_PREFIX, Confirmation};
use shared::dpop::Jkt;
use shared::secret::{AccessToken, IdToken, RefreshToken};
use shared::{ACCESS_TOKEN_TYP, AccessTokenClaims, ScopeSet};

use crate::crypto::{random_bytes, random_id, sha256_hex};
use crate::error::Result;
use crate::keys::KeyRing;
use crate::store::{Client, RefreshTokenRecord, User};

/// Who a token speaks for.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// A user, through a client; `sid` is the browser session, if the grant came from one.
    User {
        user: &'a User,
        auth_time: i64,
        sid: Option<&'a str>,
        /// How the user authenticated (RFC 8176); empty for a grant without a sign-in (an API
        /// key).
        amr: &'a [String],
    },
    /// A client acting for itself (client_credentials).
    Client,
}

pub use crate::config::types::ACR_PASSWORD;

/// Longest life of a token obtained by token exchange.
pub(crate) const EXCHANGED_TTL: i64 = 300;

/// Mints tokens.
#[derive(Debug, Clone)]
pub struct TokenIssuer {
    keys: Arc<KeyRing>,
    issuer: String,
    access_ttl: i64,
    refresh_ttl: i64,
    refresh_absolute_ttl: i64,
    /// The `acr` of a multi-factor sign-in (`[mfa] acr_value`).
    mfa_acr: String,
}

/// The successful token response (RFC 6749 §5.1). The tokens are secret types: serialized as
/// their values, never shown by `Debug`.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: AccessToken,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<RefreshToken>,
    /// OIDC Core §3.1.3.3, with `openid` in scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<IdToken>,
    /// RFC 8693 §2.2.1, for token exchange.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<&'static str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 11, item 15): `TokenResponse` derived `Debug` over raw token strings.
    #[test]
    fn token_response_debug_shows_no_token() {
        let r = TokenResponse {
            access_token: AccessToken::new("eyJ.access.sig"),
            token_type: "Bearer",
            expires_in: 600,
            scope: "notes:read".into(),
            refresh_token: Some(RefreshToken::new("rt_refresh-secret")),
            id_token: Some(IdToken::new("eyJ.id.sig")),
            issued_token_type: None,
        };
        let shown = format!("{r:?}");
        for secret in ["eyJ.access.sig", "rt_refresh-secret", "eyJ.id.sig"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["access_token"], "eyJ.access.sig");
        assert_eq!(json["refresh_token"], "rt_refresh-secret");
        assert_eq!(json["id_token"], "eyJ.id.sig");
    }
}

/// What a refresh token is for.
#[derive(Debug, Clone)]
pub struct RefreshGrant<'a> {
    pub client: &'a Client,
    pub user: &'a User,
    pub scope: &'a str,
    pub resources: Vec<String>,
    pub auth_time: i64,
    pub sid: Option<&'a str>,
    pub family: Option<(&'a str, i64)>,
    /// The DPoP key the refresh token is bound to (public clients, RFC 9449 §5).
    pub dpop_jkt: Option<Jkt>,
}

/// What an ID token says.
#[derive(Debug, Clone, Copy)]
pub struct IdTokenRequest<'a> {
    pub client: &'a Client,
    pub user: &'a User,
    pub scope: &'a ScopeSet,
    pub auth_time: i64,
    pub nonce: Option<&'a str>,
    pub sid: Option<&'a str>,
    /// How the user authenticated (RFC 8176).
    pub amr: &'a [String],
    /// The access token issued alongside (for `at_hash`).
    pub access_token: &'a str,
}

/// ID token claims (OIDC Core §2, §5.1); profile and email claims only with their scopes.
#[derive(Debug, Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    azp: &'a str,
    exp: i64,
    iat: i64,
    auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    at_hash: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    amr: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    acr: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    preferred_username: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
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
            mfa_acr: config.mfa.acr_value.clone(),
        }
    }

    /// The `acr` a sign-in with these methods satisfies (OIDC Core §2): the configured
    /// multi-factor value with a second factor, [`ACR_PASSWORD`] with a password alone, none
    /// without a sign-in.
    pub(crate) fn acr_for(&self, amr: &[String]) -> Option<String> {
        if crate::store::is_multi_factor(amr) {
            Some(self.mfa_acr.clone())
        } else if amr.is_empty() {
            None
        } else {
            Some(ACR_PASSWORD.to_owned())
        }
    }

    /// Sign an access token for `aud` (RFC 9068 §2.2); with `dpop`, bound to that key
    /// (`cnf.jkt`, RFC 9449 §6.1) — grants pass `ctx.dpop_jkt`.
    pub fn access_token(
        &self,
        subject: Subject<'_>,
        client: &Client,
        aud: &str,
        scope: &ScopeSet,
        dpop: Option<Jkt>,
        now: i64,
    ) -> Result<AccessToken> {
        let (sub, auth_time, username, roles, sid, amr) = match subject {
            Subject::User {
                user,
                auth_time,
                sid,
                amr,
            } => (
                user.id.clone(),
                Some(auth_time),
                Some(user.username.clone()),
                user.roles.clone(),
                sid.map(str::to_owned),
                amr.to_vec(),
            ),
            Subject::Client => (
                format!("{CLIENT_SUBJECT_PREFIX}{}", client.id),
                None,
                None,
                Vec::new(),
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
            sid,
            act: None,
            roles,
            acr: self.acr_for(&amr),
            amr,
            cnf: dpop.map(confirmation),
        };
        self.sign_access(&claims)
    }

    /// A Security Event Token (RFC 8417 §2.3: `typ: secevent+jwt`), signed with the current
    /// access-token key so receivers verify it with the JWKS they already hold.
    pub(crate) fn security_event(&self, claims: &serde_json::Value, now: i64) -> Result<String> {
        self.keys
            .current()
            .signers(now)
            .0
            .sign_jwt("secevent+jwt", claims)
    }

    fn sign_access(&self, claims: &AccessTokenClaims) -> Result<AccessToken> {
        let keys = self.keys.current();
        keys.signers(claims.iat)
            .0
            .sign_jwt(ACCESS_TOKEN_TYP, claims)
            .map(AccessToken::new)
    }

    /// A token obtained by token exchange (RFC 8693): `sub` stays the user of the subject
    /// token, `act` names the exchanging client, `aud` is the target; it lives at most
    /// `EXCHANGED_TTL` and never beyond the subject token; with `dpop`, bound to that key.
    /// Returns the token and its lifetime.
    #[allow(clippy::too_many_arguments)] // each is one fact of the exchange
    pub(crate) fn exchanged_token(
        &self,
        subject: &AccessTokenClaims,
        user: &User,
        actor: &Client,
        aud: &str,
        scope: &ScopeSet,
        dpop: Option<Jkt>,
        now: i64,
    ) -> Result<(AccessToken, i64)> {
        let exp = (now + EXCHANGED_TTL).min(subject.exp);
        let claims = AccessTokenClaims {
            iss: self.issuer.clone(),
            sub: user.id.clone(),
            aud: aud.to_owned(),
            exp,
            iat: now,
            jti: random_id(""),
            client_id: actor.id.clone(),
            scope: scope.to_string(),
            auth_time: subject.auth_time,
            preferred_username: Some(user.username.clone()),
            sid: subject.sid.clone(),
            act: Some(shared::claims::Actor {
                sub: format!("{CLIENT_SUBJECT_PREFIX}{}", actor.id),
            }),
            roles: user.roles.clone(),
            amr: subject.amr.clone(),
            acr: subject.acr.clone(),
            cnf: dpop.map(confirmation),
        };
        Ok((self.sign_access(&claims)?, exp - now))
    }

    /// A new refresh token for `grant`. `grant.family` continues a rotation family (with its
    /// absolute end); `None` starts one.
    pub fn refresh_token(&self, grant: RefreshGrant<'_>, now: i64) -> NewRefreshToken {
        use base64::Engine;
        let token = format!(
            "rt_{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>())
        );
        let (family_id, family_expires_at) = match grant.family {
            Some((id, end)) => (id.to_owned(), end),
            None => (random_id("rf_"), now + self.refresh_absolute_ttl),
        };
        let record = RefreshTokenRecord {
            token_hash: sha256_hex(&token),
            family_id,
            client_id: grant.client.id.clone(),
            user_id: grant.user.id.clone(),
            scope: grant.scope.to_owned(),
            resources: grant.resources,
            auth_time: grant.auth_time,
            sid: grant.sid.map(str::to_owned),
            created_at: now,
            expires_at: (now + self.refresh_ttl).min(family_expires_at),
            family_expires_at,
            used_at: None,
            revoked_at: None,
            dpop_jkt: grant.dpop_jkt.map(|j| j.to_b64()),
        };
        NewRefreshToken {
            token: RefreshToken::new(token),
            record,
        }
    }

    /// An ID token when `openid` was granted (OIDC Core §3.1.3.3), else none: the rule every
    /// grant that signs a user in follows.
    pub(crate) fn id_token_if_openid(
        &self,
        id: IdTokenRequest<'_>,
        now: i64,
    ) -> Result<Option<IdToken>> {
        if !id.scope.contains(shared::scope::OPENID) {
            return Ok(None);
        }
        self.id_token(id, now).map(Some)
    }

    /// An OpenID Connect ID token (OIDC Core §2, §3.1.3.6) for `client`, about `user`.
    pub fn id_token(&self, id: IdTokenRequest<'_>, now: i64) -> Result<IdToken> {
        use base64::Engine;
        let keys = self.keys.current();
        let signer = keys.signers(now).1;
        // at_hash (OIDC Core §3.1.3.6): the left half of the access token's hash, with the
        // hash of the ID token's alg: SHA-256 for RS256/ES256, SHA-512 for EdDSA (Ed25519).
        let hash = match signer.alg() {
            crate::keys::SigningAlg::EdDsa => &aws_lc_rs::digest::SHA512,
            _ => &aws_lc_rs::digest::SHA256,
        };
        let digest = aws_lc_rs::digest::digest(hash, id.access_token.as_bytes());
        let half = &digest.as_ref()[..digest.as_ref().len() / 2];
        let at_hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(half);
        let profile = id.scope.contains("profile");
        let email = id.scope.contains("email");
        let claims = IdTokenClaims {
            iss: &self.issuer,
            sub: &id.user.id,
            aud: &id.client.id,
            azp: &id.client.id,
            exp: now + self.access_ttl,
            iat: now,
            auth_time: id.auth_time,
            nonce: id.nonce,
            at_hash,
            sid: id.sid,
            amr: id.amr,
            acr: self.acr_for(id.amr),
            preferred_username: profile.then_some(id.user.username.as_str()),
            name: profile.then_some(id.user.name()),
            email: if email {
                id.user.email.as_deref()
            } else {
                None
            },
            email_verified: (email && id.user.email.is_some()).then_some(false),
        };
        signer.sign_jwt("JWT", &claims).map(IdToken::new)
    }

    /// Assemble the response body; `dpop`: the key the access token was bound to (the same
    /// `ctx.dpop_jkt`), which makes it a `DPoP` token (RFC 9449 §5).
    pub fn response(
        &self,
        access: AccessToken,
        scope: &ScopeSet,
        refresh: Option<RefreshToken>,
        dpop: Option<Jkt>,
    ) -> TokenResponse {
        TokenResponse {
            access_token: access,
            token_type: if dpop.is_some() { "DPoP" } else { "Bearer" },
            expires_in: self.access_ttl,
            scope: scope.to_string(),
            refresh_token: refresh,
            id_token: None,
            issued_token_type: None,
        }
    }
}

/// Shared Signals events are signed like access tokens, by the key that signs now.
impl crate::events::ssf::SetSigner for TokenIssuer {
    fn security_event(&self, claims: &serde_json::Value, now: i64) -> Result<String> {
        TokenIssuer::security_event(self, claims, now)
    }

    fn publishes(&self, kid: &str) -> bool {
        self.keys.current().verifying.contains_key(kid)
    }
}

/// `cnf` of a token bound to `jkt` (RFC 9449 §6.1).
fn confirmation(jkt: Jkt) -> Confirmation {
    Confirmation { jkt: jkt.to_b64() }
}
