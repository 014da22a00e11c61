//! Loading a server's configuration, the same way for both servers: a TOML file (or the
//! defaults), then environment overrides read through one [`Env`], so every variable is named,
//! parsed and reported alike (`KEY="value": why`). Empty variables count as unset.

use std::fmt::Display;
use std::path::Path;
use std::str::FromStr;

use serde::de::DeserializeOwned;

/// A configuration problem, reported before anything starts.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// The configuration in `file`, or the defaults when there is none.
pub fn read_file<T: DeserializeOwned + Default>(file: Option<&Path>) -> Result<T, ConfigError> {
    let Some(path) = file else {
        return Ok(T::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| ConfigError(format!("{}: {e}", path.display())))
}

/// The process environment, empty values as unset.
pub fn process_env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

/// Environment overrides, read through a lookup (the process environment, or a map in tests).
pub struct Env<F>(F);

impl<F> std::fmt::Debug for Env<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Env(..)")
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn new(lookup: F) -> Self {
        Self(lookup)
    }

    /// The raw value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<String> {
        (self.0)(key)
    }

    /// The value of `name`, or else of the first of its older `aliases` that is set, with the
    /// name it was read from. The current name wins when both are set.
    pub fn lookup<'a>(&self, name: &'a str, aliases: &[&'a str]) -> Option<(&'a str, String)> {
        std::iter::once(name)
            .chain(aliases.iter().copied())
            .find_map(|n| self.get(n).map(|v| (n, v)))
    }

    /// `field` := `key` parsed, when set.
    pub fn set<T>(&self, key: &str, field: &mut T) -> Result<(), ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        if let Some(v) = self.get(key) {
            *field = parse(key, &v)?;
        }
        Ok(())
    }

    /// `field` := `Some(key parsed)`, when set.
    pub fn set_some<T>(&self, key: &str, field: &mut Option<T>) -> Result<(), ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        if let Some(v) = self.get(key) {
            *field = Some(parse(key, &v)?);
        }
        Ok(())
    }

    /// `field` := `Some(make(value))`, when set: for secrets, which are taken as they are.
    pub fn set_secret<T>(&self, key: &str, field: &mut Option<T>, make: impl FnOnce(String) -> T) {
        if let Some(v) = self.get(key) {
            *field = Some(make(v));
        }
    }

    /// `field` := the comma-separated items of `key`, each parsed, when set.
    pub fn set_list<T>(&self, key: &str, field: &mut Vec<T>) -> Result<(), ConfigError>
    where
        T: FromStr,
        T::Err: Display,
    {
        if let Some(v) = self.get(key) {
            *field = v
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| parse(key, item))
                .collect::<Result<_, _>>()?;
        }
        Ok(())
    }
}

fn parse<T>(key: &str, value: &str) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    value
        .parse()
        .map_err(|e| ConfigError(format!("{key}={value:?}: {e}")))
}

/// The environment variable of the TOML path `path` (`browser.code_ttl_secs`) under `prefix`
/// (`AUTHZ`): `AUTHZ_BROWSER_CODE_TTL_SECS`, the dots as `_`, upper case.
pub fn env_name(prefix: &str, path: &str) -> String {
    format!("{prefix}_{}", path.replace('.', "_").to_ascii_uppercase())
}

/// Whether a URL with `scheme` and `host` may be used: https, or http on loopback only (local
/// development and tests).
pub fn https_or_loopback(scheme: &str, host: Option<&str>) -> bool {
    scheme == "https"
        || (scheme == "http" && matches!(host, Some("127.0.0.1" | "localhost" | "[::1]")))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::net::IpAddr;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Env::new(move |k: &str| map.get(k).cloned())
    }

    #[test]
    fn overrides_parse_and_name_the_variable_on_error() {
        let e = env(&[
            ("N", "7"),
            ("BAD", "x7"),
            ("L", " 10.0.0.1, ,::1 "),
            ("S", "s3"),
        ]);
        let (mut n, mut absent, mut list, mut some) = (1u32, 5u32, Vec::<IpAddr>::new(), None);
        e.set("N", &mut n).unwrap();
        e.set("ABSENT", &mut absent).unwrap();
        e.set_list("L", &mut list).unwrap();
        e.set_some("N", &mut some).unwrap();
        assert_eq!((n, absent, some), (7, 5, Some(7u8)));
        assert_eq!(list.len(), 2);
        let err = e.set("BAD", &mut n).unwrap_err().to_string();
        assert!(err.contains("BAD=\"x7\""), "{err}");
        assert_eq!(n, 7, "a failed override leaves the value");
        assert!(e.set_list("BAD", &mut list).is_err());
        let mut secret = None;
        e.set_secret("S", &mut secret, |v| v.len());
        assert_eq!(secret, Some(2));
    }

    #[test]
    fn the_current_name_wins_over_its_aliases() {
        let e = env(&[("NEW", "1"), ("OLD", "2"), ("OLDER", "3")]);
        assert_eq!(e.lookup("NEW", &["OLD"]), Some(("NEW", "1".to_owned())));
        assert_eq!(
            e.lookup("NONE", &["OLD", "OLDER"]),
            Some(("OLD", "2".to_owned()))
        );
        assert_eq!(e.lookup("NONE", &["GONE"]), None);
        assert_eq!(
            env_name("AUTHZ", "id_jag.issuers.jwks_uri"),
            "AUTHZ_ID_JAG_ISSUERS_JWKS_URI"
        );
    }

    #[test]
    fn a_missing_file_is_an_error_and_no_file_is_the_defaults() {
        #[derive(Default, serde::Deserialize, PartialEq, Debug)]
        struct C {
            x: u8,
        }
        assert_eq!(read_file::<C>(None).unwrap(), C::default());
        let e = read_file::<C>(Some(Path::new("/nonexistent/x.toml"))).unwrap_err();
        assert!(e.to_string().contains("cannot read"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "x = 3").unwrap();
        assert_eq!(read_file::<C>(Some(&p)).unwrap(), C { x: 3 });
        std::fs::write(&p, "x = \"three\"").unwrap();
        assert!(read_file::<C>(Some(&p)).is_err());
    }
}
