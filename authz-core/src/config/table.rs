//! The declarative tables the configuration is written in. Each section is one [`section!`]:
//! per variable its TOML key, type, default, doc, an optional range and the environment names
//! it had before; the struct, its `Default`, the environment overrides, the range checks and
//! the reference (`docs/configuration.md`, `reference.rs`) all derive from that one entry.
//!
//! The environment name is the TOML path after `AUTHZ_`, dots as `_`, upper case:
//! `browser.code_ttl_secs` ↔ `AUTHZ_BROWSER_CODE_TTL_SECS`, `issuer` ↔ `AUTHZ_ISSUER`. An old
//! name still works, with a warning naming the new one; when both are set the new one wins.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use shared::config::{self, ConfigError, Env};
use shared::secret::{DatabaseUrl, KeyText, Password, SigningSecret};

/// The prefix of every environment variable of `authz`.
pub(crate) const PREFIX: &str = "AUTHZ";

/// A lookup of one environment variable.
pub type EnvFn<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// The environment the overrides are read from (the process environment, or a map in tests),
/// and the old names it used (logged once the logging is up: `Config::warn_deprecated`).
pub struct Lookup<'a> {
    env: Env<&'a EnvFn<'a>>,
    deprecated: std::cell::RefCell<Vec<String>>,
}

impl std::fmt::Debug for Lookup<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Lookup(..)")
    }
}

impl<'a> Lookup<'a> {
    pub fn new(env: &'a EnvFn<'a>) -> Self {
        Self {
            env: Env::new(env),
            deprecated: Default::default(),
        }
    }

    /// The value of `name`, or else of one of its old names; with the name used. Each old
    /// name that is set is noted (whether used or not: the new name wins).
    pub fn read(&self, name: &str, aliases: &[&str]) -> Option<(String, String)> {
        for old in aliases.iter().filter(|a| a.starts_with(PREFIX)) {
            if self.env.get(old).is_some() {
                let also = if self.env.get(name).is_some() {
                    ", which is set too and wins"
                } else {
                    ""
                };
                self.deprecated
                    .borrow_mut()
                    .push(format!("{old} is deprecated: use {name}{also}"));
            }
        }
        self.env
            .lookup(name, aliases)
            .map(|(used, value)| (used.to_owned(), value))
    }

    /// The notes on old names used so far.
    pub(crate) fn deprecated(&self) -> Vec<String> {
        self.deprecated.borrow().clone()
    }
}

/// One variable of the section `S`: its table entry.
pub struct Var<S> {
    /// The TOML key inside the section.
    pub key: &'static str,
    /// What it does (the field's doc comment).
    pub doc: &'static str,
    /// Environment names it had before (deprecated: accepted with a warning). A name outside
    /// `AUTHZ_` (`DATABASE_URL`) is a common convention, accepted quietly.
    pub aliases: &'static [&'static str],
    /// The values allowed (numbers only), checked by [`Section::check_ranges`].
    pub range: Option<(i64, i64)>,
    /// Set the field from an environment value.
    pub set: fn(&mut S, &str) -> Result<(), String>,
    /// The field's value as written in the environment (secrets: nothing).
    pub show: fn(&S) -> String,
    /// The field's value as a number, for the range check.
    pub number: fn(&S) -> Option<i64>,
}

impl<S> std::fmt::Debug for Var<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Var")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// A TOML table of the configuration with its variables.
pub trait Section: Sized + 'static {
    /// Its TOML path: `""` for the top level, `"browser"`, `"id_jag.issuers"`.
    const PATH: &'static str;
    /// Its variables.
    const VARS: &'static [Var<Self>];

    /// Apply every variable the environment sets (the new name, or else an old one).
    fn apply_vars(&mut self, env: &Lookup<'_>) -> Result<(), ConfigError> {
        for var in Self::VARS {
            let name = env_name(Self::PATH, var.key);
            if let Some((used, value)) = env.read(&name, var.aliases) {
                (var.set)(self, &value)
                    .map_err(|e| ConfigError(format!("{used}={value:?}: {e}")))?;
            }
        }
        Ok(())
    }

    /// Refuse a number outside its variable's range.
    fn check_ranges(&self) -> Result<(), ConfigError> {
        for var in Self::VARS {
            if let (Some((lo, hi)), Some(n)) = (var.range, (var.number)(self))
                && !(lo..=hi).contains(&n)
            {
                return Err(invalid(
                    Self::PATH,
                    var.key,
                    &format!("must be within {lo}..={hi}"),
                ));
            }
        }
        Ok(())
    }
}

/// The full TOML path of `key` in the section at `path`.
pub(crate) fn toml_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The environment variable of `key` in the section at `path`.
pub fn env_name(path: &str, key: &str) -> String {
    config::env_name(PREFIX, &toml_path(path, key))
}

/// A validation error about one variable, naming its TOML path and environment variable.
pub fn invalid(path: &str, key: &str, message: &str) -> ConfigError {
    ConfigError(format!(
        "{} ({}) {message}",
        toml_path(path, key),
        env_name(path, key)
    ))
}

/// Is `key` of the section `S` set in the environment (under any of its names)?
pub(crate) fn is_set<S: Section>(env: &Lookup<'_>, key: &str) -> bool {
    S::VARS.iter().find(|v| v.key == key).is_some_and(|v| {
        let name = env_name(S::PATH, key);
        env.env.lookup(&name, v.aliases).is_some()
    })
}

/// A field type that an environment variable can set.
pub trait EnvValue {
    fn set_env(&mut self, raw: &str) -> Result<(), String>;
    fn show(&self) -> String;
    fn number(&self) -> Option<i64> {
        None
    }
}

/// A single value read with its `FromStr`; lists are comma-separated, `Option`s set to `Some`.
pub trait Scalar: Sized {
    fn parse_env(raw: &str) -> Result<Self, String>;
    fn show_env(&self) -> String;
}

macro_rules! scalars {
    ($($t:ty => $show:expr),* $(,)?) => {$(
        impl $crate::config::table::Scalar for $t {
            fn parse_env(raw: &str) -> Result<Self, String> {
                raw.parse::<$t>().map_err(|e| e.to_string())
            }
            fn show_env(&self) -> String {
                let show: fn(&$t) -> String = $show;
                show(self)
            }
        }
        impl $crate::config::table::EnvValue for Option<$t> {
            fn set_env(&mut self, raw: &str) -> Result<(), String> {
                *self = Some(<$t as $crate::config::table::Scalar>::parse_env(raw)?);
                Ok(())
            }
            fn show(&self) -> String {
                self.as_ref().map($crate::config::table::Scalar::show_env).unwrap_or_default()
            }
        }
        impl $crate::config::table::EnvValue for Vec<$t> {
            fn set_env(&mut self, raw: &str) -> Result<(), String> {
                *self = $crate::config::table::list(raw)?;
                Ok(())
            }
            fn show(&self) -> String {
                self.iter().map($crate::config::table::Scalar::show_env).collect::<Vec<_>>().join(",")
            }
        }
        impl $crate::config::table::EnvValue for Option<Vec<$t>> {
            fn set_env(&mut self, raw: &str) -> Result<(), String> {
                *self = Some($crate::config::table::list(raw)?);
                Ok(())
            }
            fn show(&self) -> String {
                self.as_ref().map($crate::config::table::EnvValue::show).unwrap_or_default()
            }
        }
    )*};
}

macro_rules! plain {
    ($($t:ty),*) => {$(
        impl $crate::config::table::EnvValue for $t {
            fn set_env(&mut self, raw: &str) -> Result<(), String> {
                *self = <$t as $crate::config::table::Scalar>::parse_env(raw)?;
                Ok(())
            }
            fn show(&self) -> String {
                $crate::config::table::Scalar::show_env(self)
            }
        }
    )*};
}

macro_rules! numbers {
    ($($t:ty),*) => {$(
        scalars!($t => |v| v.to_string());
        impl EnvValue for $t {
            fn set_env(&mut self, raw: &str) -> Result<(), String> {
                *self = <$t>::parse_env(raw)?;
                Ok(())
            }
            fn show(&self) -> String {
                self.to_string()
            }
            fn number(&self) -> Option<i64> {
                Some(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
    )*};
}

numbers!(u32, u64, usize);
scalars!(
    i64 => |v| v.to_string(),
    bool => |v| v.to_string(),
    String => String::clone,
    SocketAddr => |v| v.to_string(),
    IpAddr => |v| v.to_string(),
    PathBuf => |v| v.display().to_string(),
    crate::config::types::SigningAlg => |v| v.as_str().to_owned(),
    shared::observe::LogFormat => |v| match v {
        shared::observe::LogFormat::Text => "text".to_owned(),
        shared::observe::LogFormat::Json => "json".to_owned(),
    },
);
plain!(
    bool,
    String,
    SocketAddr,
    PathBuf,
    crate::config::types::SigningAlg,
    shared::observe::LogFormat
);
// The sections' own value types implement these beside their definitions.
pub(crate) use {plain, scalars};

impl EnvValue for i64 {
    fn set_env(&mut self, raw: &str) -> Result<(), String> {
        *self = i64::parse_env(raw)?;
        Ok(())
    }
    fn show(&self) -> String {
        self.to_string()
    }
    fn number(&self) -> Option<i64> {
        Some(*self)
    }
}

/// Secrets are taken as they are and never shown.
macro_rules! secrets {
    ($($t:ty),*) => {$(
        impl EnvValue for Option<$t> {
            fn set_env(&mut self, raw: &str) -> Result<(), String> {
                *self = Some(<$t>::new(raw));
                Ok(())
            }
            fn show(&self) -> String {
                String::new()
            }
        }
    )*};
}

secrets!(DatabaseUrl, KeyText, Password);

impl EnvValue for SigningSecret {
    fn set_env(&mut self, raw: &str) -> Result<(), String> {
        *self = SigningSecret::new(raw);
        Ok(())
    }
    fn show(&self) -> String {
        String::new()
    }
}

/// The comma-separated items of `raw`, each parsed; blanks are skipped.
pub(crate) fn list<T: Scalar>(raw: &str) -> Result<Vec<T>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| T::parse_env(item).map_err(|e| format!("{item:?}: {e}")))
        .collect()
}

/// One section as a struct with its table: the struct (`Debug`, `Clone`, `Deserialize`, all
/// fields `pub`), its `Default` from the `= default` of each field, and its [`Section`] impl.
/// Fields in the `toml { … }` block (sub-sections, tables, lists of tables) have no
/// environment variable of their own.
///
/// ```ignore
/// section! {
///     /// The browser-facing flow.
///     #[derive(Copy)]
///     #[serde(default, deny_unknown_fields)]
///     pub struct BrowserConfig at "browser" {
///         /// Authorization code lifetime.
///         code_ttl_secs: i64 = 60, range 10..=600, was ["AUTHZ_CODE_TTL_SECS"];
///     }
/// }
/// ```
macro_rules! section {
    (
        $(#[$meta:meta])*
        pub struct $name:ident at $path:literal {
            $(
                $(#[doc = $doc:literal])*
                $(#[serde($($serde:tt)*)])*
                $field:ident : $ty:ty = $default:expr
                    $(, range $lo:tt ..= $hi:tt)?
                    $(, was [$($alias:literal),* $(,)?])?
                ;
            )*
        }
        $(toml {
            $(
                $(#[doc = $tdoc:literal])*
                $(#[serde($($tserde:tt)*)])*
                $tfield:ident : $tty:ty = $tdefault:expr;
            )*
        })?
    ) => {
        #[derive(Debug, Clone, serde::Deserialize)]
        $(#[$meta])*
        pub struct $name {
            $( $(#[doc = $doc])* $(#[serde($($serde)*)])* pub $field: $ty, )*
            $($( $(#[doc = $tdoc])* $(#[serde($($tserde)*)])* pub $tfield: $tty, )*)?
        }

        impl Default for $name {
            fn default() -> Self {
                Self {
                    $( $field: $default, )*
                    $($( $tfield: $tdefault, )*)?
                }
            }
        }

        $crate::config::table::table! {
            $name at $path {$(
                $(#[doc = $doc])*
                $field $(, range $lo ..= $hi)? $(, was [$($alias),*])?;
            )*}
        }
    };
}

/// The [`Section`] impl of a struct: its TOML path and its variables (used by [`section!`],
/// and alone for a struct defined elsewhere, whose fields keep their own docs there).
macro_rules! table {
    (
        $name:ident at $path:literal {
            $(
                $(#[doc = $doc:literal])*
                $field:ident
                    $(, range $lo:tt ..= $hi:tt)?
                    $(, was [$($alias:literal),* $(,)?])?
                ;
            )*
        }
    ) => {
        impl $crate::config::table::Section for $name {
            const PATH: &'static str = $path;
            const VARS: &'static [$crate::config::table::Var<Self>] = &[$(
                $crate::config::table::Var {
                    key: stringify!($field),
                    doc: concat!($($doc, "\n",)*),
                    aliases: &[$($($alias),*)?],
                    range: $crate::config::table::table!(@range $($lo, $hi)?),
                    set: |s, v| $crate::config::table::EnvValue::set_env(&mut s.$field, v),
                    show: |s| $crate::config::table::EnvValue::show(&s.$field),
                    number: |s| $crate::config::table::EnvValue::number(&s.$field),
                },
            )*];
        }
    };
    (@range) => { None };
    (@range $lo:tt, $hi:tt) => { Some(($lo, $hi)) };
}

pub(crate) use {section, table};
