//! Newtypes for secrets: they never print their value in `Debug` (oauth2-rs `new_secret_type!`).
//! They serialize and deserialize as the plain string, so a response or configuration field can
//! hold one end to end without ever being printed by `{:?}`.

/// Declare a string newtype whose `Debug` output is redacted.
#[macro_export]
macro_rules! secret_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }
            /// The secret itself. Callers must not log it.
            pub fn expose(&self) -> &str {
                &self.0
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

secret_type!(
    /// A client secret as presented or generated.
    ClientSecret
);
secret_type!(
    /// A password as presented by a user.
    Password
);
secret_type!(
    /// An opaque refresh token.
    RefreshToken
);
secret_type!(
    /// A signed access token (JWT).
    AccessToken
);
secret_type!(
    /// A signed OpenID Connect ID token (JWT).
    IdToken
);
secret_type!(
    /// Key material given as text (base64 of a master or notes key).
    KeyText
);
secret_type!(
    /// A shared secret for signing outgoing messages (webhook HMAC keys).
    SigningSecret
);

/// A database URL whose password (if any) is redacted in `Debug`, e.g.
/// `postgres://app:[redacted]@db:5432/authz`.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The URL itself, password included. Callers must not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// The URL with any password replaced, fit for logs and banners.
    pub fn redacted(&self) -> String {
        let s = &self.0;
        // scheme://user:password@host… — only the part between the first ':' after "//" and
        // the last '@' before the host is secret.
        let Some(start) = s.find("://").map(|i| i + 3) else {
            return s.clone();
        };
        let rest = &s[start..];
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..authority_end];
        match (authority.rfind('@'), authority.find(':')) {
            (Some(at), Some(colon)) if colon < at => format!(
                "{}{}:[redacted]{}",
                &s[..start],
                &authority[..colon],
                &s[start + at..]
            ),
            _ => s.clone(),
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({:?})", self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = ClientSecret::new("hunter2");
        assert_eq!(format!("{s:?}"), "ClientSecret([redacted])");
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            "\"hunter2\"",
            "serializes as the value"
        );
    }

    #[test]
    fn database_url_password_is_redacted() {
        let u = DatabaseUrl::new("postgres://app:s3cr%40t@db.internal:5432/authz?sslmode=require");
        let shown = format!("{u:?}");
        assert!(!shown.contains("s3cr"), "{shown}");
        assert!(shown.contains("postgres://app:[redacted]@db.internal:5432/authz"));
        for plain in [
            "sqlite://./data/authz.db",
            "postgres://postgres@127.0.0.1:5432/test",
            "postgres://db/x?options=-c%20search_path%3Dit",
        ] {
            assert_eq!(DatabaseUrl::new(plain).redacted(), plain);
        }
    }
}
