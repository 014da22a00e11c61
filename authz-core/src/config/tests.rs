//! The configuration's tests: loading, the environment over the file, the old names, the
//! checks.

use super::table::Lookup;
use super::*;

#[test]
fn environment_overrides_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("authz.toml");
    std::fs::write(
        &path,
        "issuer = \"https://auth.example.com\"\naccess_token_ttl_secs = 300\n",
    )
    .unwrap();
    let c = Config::load(
        Some(&path),
        env_of(&[("AUTHZ_ACCESS_TOKEN_TTL_SECS", "120")]),
    )
    .unwrap();
    assert_eq!(c.issuer, "https://auth.example.com");
    assert_eq!(c.access_token_ttl_secs, 120);
}

#[test]
fn rejects_insecure_issuer_and_bad_values() {
    for (k, v) in [
        ("AUTHZ_ISSUER", "http://auth.example.com"),
        ("AUTHZ_ISSUER", "https://auth.example.com/"),
        ("AUTHZ_ISSUER", "https://auth.example.com?x=1"),
        ("AUTHZ_ACCESS_TOKEN_TTL_SECS", "5"),
        ("AUTHZ_ARGON2_T_COST", "0"),
        ("AUTHZ_SIGNING_ALG", "HS256"),
        ("AUTHZ_BIND", "nonsense"),
    ] {
        assert!(
            Config::load(None, env_of(&[(k, v)])).is_err(),
            "{k}={v} accepted"
        );
    }
}

/// Regression (issue 11, item 15): `Config` derived `Debug` with the raw master key and
/// database password.
#[test]
fn debug_never_shows_the_master_key_or_database_password() {
    let c = Config::load(
        None,
        env_of(&[
            (
                "AUTHZ_MASTER_KEY",
                "c2VjcmV0LW1hc3Rlci1rZXktbWF0ZXJpYWwtMzJieXRlcyE=",
            ),
            (
                "DATABASE_URL",
                "postgres://authz:hunter2-db-pw@db:5432/authz",
            ),
        ]),
    )
    .unwrap();
    let shown = format!("{c:?}");
    assert!(!shown.contains("c2VjcmV0"), "{shown}");
    assert!(!shown.contains("hunter2-db-pw"), "{shown}");
    assert!(shown.contains("postgres://authz:[redacted]@db:5432/authz"));
    assert_eq!(
        c.database_url(),
        "postgres://authz:hunter2-db-pw@db:5432/authz"
    );
}

#[test]
fn unknown_toml_keys_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("authz.toml");
    std::fs::write(&path, "isuer = \"https://x\"\n").unwrap();
    assert!(Config::load(Some(&path), env_of(&[])).is_err());
}

#[test]
fn role_scopes_union() {
    let c = Config::default();
    assert_eq!(
        c.role_scopes(["readonly", "nope"]).to_string(),
        "notes:read profile:read"
    );
}

/// An old name still works (noted for a warning); when the new one is set too, the new one
/// wins; `DATABASE_URL` is accepted quietly.
#[test]
fn old_names_are_aliases_and_the_new_name_wins() {
    let c = Config::load(
        None,
        env_of(&[
            ("AUTHZ_REGISTRATION_OPEN", "false"),
            ("AUTHZ_RATE_TOKEN", "7"),
            ("AUTHZ_RATE_LIMITS_TOKEN", "9"),
            ("AUTHZ_DEVICE_FLOW", "false"),
            ("DATABASE_URL", "sqlite:///tmp/x.db"),
        ]),
    )
    .unwrap();
    assert!(!c.browser.registration_open);
    assert_eq!(c.rate_limits.token, 9, "the new name wins");
    assert!(!c.device.enabled);
    assert_eq!(c.database_url(), "sqlite:///tmp/x.db");
    assert_eq!(
        c.deprecated_env,
        [
            "AUTHZ_REGISTRATION_OPEN is deprecated: use AUTHZ_BROWSER_REGISTRATION_OPEN",
            "AUTHZ_RATE_TOKEN is deprecated: use AUTHZ_RATE_LIMITS_TOKEN, which is set too and wins",
            "AUTHZ_DEVICE_FLOW is deprecated: use AUTHZ_DEVICE_ENABLED",
        ]
    );
    let both = Config::load(
        None,
        env_of(&[
            ("AUTHZ_DATABASE_URL", "sqlite:///tmp/new.db"),
            ("DATABASE_URL", "sqlite:///tmp/old.db"),
        ]),
    )
    .unwrap();
    assert_eq!(both.database_url(), "sqlite:///tmp/new.db");
    assert!(both.deprecated_env.is_empty(), "DATABASE_URL is quiet");
    // The webhook and the ID-JAG issuer from old names.
    let items = Config::load(
        None,
        env_of(&[
            ("AUTHZ_ALERT_WEBHOOK_URL", "https://alerts.example/hook"),
            ("AUTHZ_ALERT_WEBHOOK_SECRET", "0123456789abcdef"),
            ("AUTHZ_ID_JAG_ISSUER", "https://idp.example"),
            ("AUTHZ_ID_JAG_ISSUERS_JWKS_URI", "https://idp.example/jwks"),
            ("AUTHZ_ID_JAG_CLIENTS", "agent"),
        ]),
    )
    .unwrap();
    assert_eq!(items.alerts.webhooks[0].url, "https://alerts.example/hook");
    assert_eq!(
        items.alerts.webhooks[0].kinds,
        alerts::default_alert_kinds()
    );
    assert_eq!(items.id_jag.issuers[0].allowed_clients, ["agent"]);
    assert_eq!(items.deprecated_env.len(), 4);
}

/// Every variable of every table is read from the environment under its name and its old
/// names (so every section is wired into loading), and every TOML path is a key of the file.
#[test]
fn every_table_entry_is_read_under_its_env_name_and_toml_path() {
    let asked = std::cell::RefCell::new(std::collections::BTreeSet::new());
    // Once with nothing set, once with the webhook and the issuer set (their other
    // variables are read only then).
    for set in [
        &[][..],
        &[
            ("AUTHZ_ALERTS_WEBHOOKS_URL", "https://a.example/h"),
            ("AUTHZ_ALERTS_WEBHOOKS_SECRET", "0123456789abcdef"),
            ("AUTHZ_ID_JAG_ISSUERS_ISSUER", "https://idp.example"),
            ("AUTHZ_ID_JAG_ISSUERS_JWKS_URI", "https://idp.example/k"),
        ][..],
    ] {
        let values = env_of(set);
        let env = |k: &str| {
            asked.borrow_mut().insert(k.to_owned());
            values(k)
        };
        let mut c = Config::default();
        c.apply_env(&Lookup::new(&env)).unwrap();
    }
    let asked = asked.into_inner();
    for e in reference::all() {
        assert!(asked.contains(&e.env), "{} is never read", e.env);
        for old in e.aliases {
            assert!(asked.contains(*old), "{old} is never read");
        }
        // `key = 0` at its path: fine or a type error, never an unknown key.
        let (table, key) = e.toml.rsplit_once('.').unwrap_or(("", &e.toml));
        let header = match table {
            "" => String::new(),
            "alerts.webhooks" | "id_jag.issuers" => format!("[[{table}]]\n"),
            t => format!("[{t}]\n"),
        };
        let err = toml::from_str::<Config>(&format!("{header}{key} = 0\n"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!err.contains("unknown field"), "{}: {err}", e.toml);
    }
}

/// A refused value names its TOML path and its environment variable.
#[test]
fn errors_name_the_toml_path_and_the_env_name() {
    let err = |pairs: &[(&str, &str)]| Config::load(None, env_of(pairs)).unwrap_err().to_string();
    let e = err(&[("AUTHZ_BROWSER_CODE_TTL_SECS", "5")]);
    assert!(
        e.contains("browser.code_ttl_secs (AUTHZ_BROWSER_CODE_TTL_SECS) must be within 10..=600"),
        "{e}"
    );
    let e = err(&[("AUTHZ_CODE_TTL_SECS", "x")]);
    assert!(e.contains("AUTHZ_CODE_TTL_SECS=\"x\""), "{e}");
    let e = err(&[("AUTHZ_ISSUER", "http://auth.example.com")]);
    assert!(e.contains("issuer (AUTHZ_ISSUER) must be https"), "{e}");
    let e = err(&[("AUTHZ_DPOP_NONCE_SECS", "1")]);
    assert!(e.contains("dpop.nonce_secs (AUTHZ_DPOP_NONCE_SECS)"), "{e}");
}

#[test]
fn for_tests_is_valid_and_cheap() {
    let c = Config::for_tests("/tmp/x");
    c.validate().unwrap();
    assert_eq!(c.argon2.m_cost, 256);
    assert_eq!(c.data_dir, std::path::Path::new("/tmp/x"));
}
