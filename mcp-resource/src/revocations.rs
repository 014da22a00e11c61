//! What this server must refuse although the tokens verify offline: rules learned from
//! Shared Signals events (`crate::signals`) and from the logout tool, kept in memory (checked on
//! every request) and in the `revocations` table (loaded at start).
//!
//! A `session-revoked` event about a session refuses that session's tokens; with an
//! `application`, only that client's tokens of it (an RFC 7009 revocation in a browser
//! session). `account-disabled`, `credential-change` and a `session-revoked` about a user alone
//! refuse the user's tokens (or one client's, for a revoked API key) issued at or before the
//! event. Rules are kept until every token they cover has expired.

use std::collections::HashMap;
use std::sync::RwLock;

use serde_json::Value;
use shared::AccessTokenClaims;

const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
const CREDENTIAL_CHANGE: &str =
    "https://schemas.openid.net/secevent/caep/event-type/credential-change";
const ACCOUNT_DISABLED: &str =
    "https://schemas.openid.net/secevent/risc/event-type/account-disabled";

/// One thing to refuse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// Every token of the session.
    Session { sid: String },
    /// One client's tokens of the session.
    Grant { sid: String, client_id: String },
    /// The user's tokens (or one client's) issued at or before `before_iat`.
    Subject {
        sub: String,
        client_id: Option<String>,
        before_iat: i64,
    },
}

impl Rule {
    /// The storage and lookup key: one row per rule, found from a token's claims.
    fn key(&self) -> String {
        match self {
            Self::Session { sid } => format!("session {sid}"),
            Self::Grant { sid, client_id } => format!("grant {sid} {client_id}"),
            Self::Subject {
                sub,
                client_id: None,
                ..
            } => format!("subject {sub}"),
            Self::Subject {
                sub,
                client_id: Some(c),
                ..
            } => format!("subject {sub} {c}"),
        }
    }

    pub fn sid(&self) -> Option<&str> {
        match self {
            Self::Session { sid } | Self::Grant { sid, .. } => Some(sid),
            Self::Subject { .. } => None,
        }
    }

    pub fn client_id(&self) -> Option<&str> {
        match self {
            Self::Grant { client_id, .. } => Some(client_id),
            Self::Subject { client_id, .. } => client_id.as_deref(),
            Self::Session { .. } => None,
        }
    }

    pub fn sub(&self) -> Option<&str> {
        match self {
            Self::Subject { sub, .. } => Some(sub),
            _ => None,
        }
    }

    pub fn before_iat(&self) -> Option<i64> {
        match self {
            Self::Subject { before_iat, .. } => Some(*before_iat),
            _ => None,
        }
    }

    /// Back from the stored columns.
    pub fn from_columns(
        sid: Option<String>,
        client_id: Option<String>,
        sub: Option<String>,
        before_iat: Option<i64>,
    ) -> Option<Self> {
        match (sid, client_id, sub, before_iat) {
            (Some(sid), None, None, None) => Some(Self::Session { sid }),
            (Some(sid), Some(client_id), None, None) => Some(Self::Grant { sid, client_id }),
            (None, client_id, Some(sub), Some(before_iat)) => Some(Self::Subject {
                sub,
                client_id,
                before_iat,
            }),
            _ => None,
        }
    }
}

/// A rule as kept: its key and until when it matters.
#[derive(Debug, Clone)]
pub struct Stored {
    pub key: String,
    pub rule: Rule,
    pub expires_at: i64,
}

impl Stored {
    pub fn new(rule: Rule, expires_at: i64) -> Self {
        Self {
            key: rule.key(),
            rule,
            expires_at,
        }
    }
}

/// The rules in memory, checked on every request (four lookups, none while there are no
/// rules).
#[derive(Debug, Default)]
pub struct Revocations(RwLock<HashMap<String, Stored>>);

impl Revocations {
    pub fn new(rules: Vec<Stored>) -> Self {
        Self(RwLock::new(
            rules.into_iter().map(|s| (s.key.clone(), s)).collect(),
        ))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Stored>> {
        match self.0.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Why `claims` must be refused, if a rule says so.
    pub fn refuses(&self, claims: &AccessTokenClaims) -> Option<&'static str> {
        let map = self.read();
        if map.is_empty() {
            return None;
        }
        if let Some(sid) = &claims.sid {
            if map.contains_key(&format!("session {sid}")) {
                return Some("the session this token belongs to was ended");
            }
            if map.contains_key(&format!("grant {sid} {}", claims.client_id)) {
                return Some("this client's grant in the session was revoked");
            }
        }
        let issued_before = |key: String| {
            map.get(&key)
                .and_then(|s| s.rule.before_iat())
                .is_some_and(|before| claims.iat <= before)
        };
        if issued_before(format!("subject {}", claims.sub))
            || issued_before(format!("subject {} {}", claims.sub, claims.client_id))
        {
            return Some("the account's tokens issued before a security event were revoked");
        }
        None
    }

    /// Add (or extend) a rule in memory, forgetting expired ones.
    pub fn insert(&self, stored: Stored, now: i64) {
        let mut map = match self.0.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        map.retain(|_, s| s.expires_at >= now);
        match map.get_mut(&stored.key) {
            Some(old) => {
                if let (Rule::Subject { before_iat: a, .. }, Rule::Subject { before_iat: b, .. }) =
                    (&mut old.rule, &stored.rule)
                {
                    *a = (*a).max(*b);
                }
                old.expires_at = old.expires_at.max(stored.expires_at);
            }
            None => {
                map.insert(stored.key.clone(), stored);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The rules a verified SET asks for (none for event types this server does not act on).
/// Subjects must be of `issuer`.
pub fn rules_of(claims: &Value, issuer: &str) -> Vec<Rule> {
    let subject = &claims["sub_id"];
    let opaque = |name: &str| subject[name]["id"].as_str().map(str::to_owned);
    let user = (subject["user"]["format"] == "iss_sub" && subject["user"]["iss"] == issuer)
        .then(|| subject["user"]["sub"].as_str().map(str::to_owned))
        .flatten();
    let (sid, app) = (opaque("session"), opaque("application"));
    let Some(events) = claims["events"].as_object() else {
        return Vec::new();
    };
    let mut rules = Vec::new();
    for (kind, event) in events {
        let at = event["event_timestamp"]
            .as_i64()
            .or_else(|| claims["iat"].as_i64());
        let by_subject = |user: &Option<String>, client_id: Option<String>| {
            user.clone().zip(at).map(|(sub, before_iat)| Rule::Subject {
                sub,
                client_id,
                before_iat,
            })
        };
        let rule = match kind.as_str() {
            SESSION_REVOKED => match (&sid, &app) {
                (Some(sid), Some(client_id)) => Some(Rule::Grant {
                    sid: sid.clone(),
                    client_id: client_id.clone(),
                }),
                (Some(sid), None) => Some(Rule::Session { sid: sid.clone() }),
                (None, _) => by_subject(&user, app.clone()),
            },
            ACCOUNT_DISABLED | CREDENTIAL_CHANGE => by_subject(&user, app.clone()),
            _ => None,
        };
        rules.extend(rule);
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISS: &str = "https://auth.example";

    fn claims(events: &str, subject: Value) -> Value {
        serde_json::json!({
            "iss": ISS, "jti": "j", "iat": 100, "aud": "rs",
            "sub_id": subject,
            "events": { events: { "event_timestamp": 90 } },
        })
    }

    #[test]
    fn events_become_rules() {
        let user = serde_json::json!({"format": "iss_sub", "iss": ISS, "sub": "u1"});
        let session = serde_json::json!({"format": "opaque", "id": "s1"});
        let app = serde_json::json!({"format": "opaque", "id": "c1"});
        let c = claims(
            SESSION_REVOKED,
            serde_json::json!({"format": "complex", "user": user, "session": session}),
        );
        assert_eq!(rules_of(&c, ISS), vec![Rule::Session { sid: "s1".into() }]);
        let c = claims(
            SESSION_REVOKED,
            serde_json::json!({"format": "complex", "session": session, "application": app}),
        );
        assert_eq!(
            rules_of(&c, ISS),
            vec![Rule::Grant {
                sid: "s1".into(),
                client_id: "c1".into()
            }]
        );
        let c = claims(
            ACCOUNT_DISABLED,
            serde_json::json!({"format": "complex", "user": user}),
        );
        assert_eq!(
            rules_of(&c, ISS),
            vec![Rule::Subject {
                sub: "u1".into(),
                client_id: None,
                before_iat: 90
            }]
        );
        // Another issuer's subject, or an unknown event: nothing.
        assert!(rules_of(&c, "https://other.example").is_empty());
        let c = claims("urn:example:other", serde_json::json!({"user": user}));
        assert!(rules_of(&c, ISS).is_empty());
    }

    #[test]
    fn rules_refuse_what_they_cover_and_nothing_else() {
        let token = |sid: Option<&str>, client: &str, sub: &str, iat: i64| AccessTokenClaims {
            iss: ISS.into(),
            sub: sub.into(),
            aud: "rs".into(),
            exp: iat + 600,
            iat,
            jti: "t".into(),
            client_id: client.into(),
            scope: String::new(),
            auth_time: None,
            preferred_username: None,
            sid: sid.map(str::to_owned),
            act: None,
            roles: Vec::new(),
            amr: Vec::new(),
            acr: None,
            cnf: None,
        };
        let r = Revocations::default();
        assert!(r.refuses(&token(Some("s1"), "c1", "u1", 50)).is_none());
        r.insert(
            Stored::new(
                Rule::Grant {
                    sid: "s1".into(),
                    client_id: "c1".into(),
                },
                1000,
            ),
            0,
        );
        assert!(r.refuses(&token(Some("s1"), "c1", "u1", 50)).is_some());
        assert!(
            r.refuses(&token(Some("s1"), "c2", "u1", 50)).is_none(),
            "other client"
        );
        assert!(
            r.refuses(&token(Some("s2"), "c1", "u1", 50)).is_none(),
            "other session"
        );
        r.insert(
            Stored::new(
                Rule::Subject {
                    sub: "u2".into(),
                    client_id: None,
                    before_iat: 100,
                },
                1000,
            ),
            0,
        );
        assert!(r.refuses(&token(None, "c9", "u2", 100)).is_some());
        assert!(
            r.refuses(&token(None, "c9", "u2", 101)).is_none(),
            "issued after"
        );
        // Expired rules are forgotten as new ones come.
        r.insert(Stored::new(Rule::Session { sid: "s9".into() }, 5000), 2000);
        assert_eq!(r.len(), 1);
    }
}
