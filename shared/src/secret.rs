//! Newtypes for secrets: they never print their value in `Debug` (oauth2-rs `new_secret_type!`).

/// Declare a string newtype whose `Debug` output is redacted.
#[macro_export]
macro_rules! secret_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq)]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = ClientSecret::new("hunter2");
        assert_eq!(format!("{s:?}"), "ClientSecret([redacted])");
        assert_eq!(s.expose(), "hunter2");
    }
}
