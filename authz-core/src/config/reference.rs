//! The configuration reference, made from the tables: every variable with its TOML path,
//! environment name, default and doc, and the old names still accepted. `docs/configuration.md`
//! is this text (a test compares them; `AUTHZ_WRITE_REFERENCE=1 cargo test -p authz-core
//! reference` rewrites the file).

use std::fmt::Write as _;

use super::Config;
use super::alerts::Webhook;
use super::id_jag::TrustedIssuer;
use super::table::{Section, env_name, toml_path};

/// One variable as the reference shows it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub toml: String,
    pub env: String,
    /// Old environment names, still accepted.
    pub aliases: &'static [&'static str],
    pub default: String,
    pub doc: String,
}

/// The variables of one section, with the values of `values`.
fn entries<S: Section>(values: &S) -> (&'static str, Vec<Entry>) {
    let entries = S::VARS
        .iter()
        .map(|v| Entry {
            toml: toml_path(S::PATH, v.key),
            env: env_name(S::PATH, v.key),
            aliases: v.aliases,
            default: (v.show)(values),
            doc: v
                .doc
                .lines()
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" ")
                .trim()
                .to_owned(),
        })
        .collect();
    (S::PATH, entries)
}

/// Every section's variables with their defaults, in the order of the reference.
pub(crate) fn sections() -> Vec<(&'static str, Vec<Entry>)> {
    let c = Config::default();
    vec![
        entries(&c),
        entries(&c.argon2),
        entries(&c.password_policy),
        entries(&c.browser),
        entries(&c.rate_limits),
        entries(&c.cimd),
        entries(&c.id_jag),
        entries(&TrustedIssuer::default()),
        entries(&c.ssf),
        entries(&Webhook::default()),
        entries(&c.mfa),
        entries(&c.console),
        entries(&c.dpop),
        entries(&c.device),
        entries(&c.par),
        entries(&c.federation),
        entries(&c.ldap),
    ]
}

/// Every variable.
pub fn all() -> Vec<Entry> {
    sections().into_iter().flat_map(|(_, e)| e).collect()
}

const INTRO: &str = "\
# Configuration reference

`authz` reads an optional TOML file (`authz --config authz.toml`, or `AUTHZ_CONFIG`), then
environment variables, which win over the file. Every variable is optional. Its environment
name is its TOML path after `AUTHZ_`, dots as `_`, in upper case: `[browser] code_ttl_secs`
is `AUTHZ_BROWSER_CODE_TTL_SECS`, the top-level `issuer` is `AUTHZ_ISSUER`. Lists are
comma-separated in the environment and arrays in the file.

Only in the TOML file: `[roles]` (role name → scopes), `[[alerts.webhooks]]` and
`[[id_jag.issuers]]` (the environment may add one of each, below), an issuer's `subjects`
table, and the upstream identity providers `[[upstream]]` (`docs/federation.md`; each one's
client secret also from `AUTHZ_UPSTREAM_<ID>_CLIENT_SECRET`), and `[ldap]`'s `group_roles`
table. This page is generated from
the tables in `authz-core/src/config/` (a test keeps it exact); `.env.example` lists the
same variables.
";

/// The reference as Markdown (`docs/configuration.md`).
pub fn markdown() -> String {
    let mut out = String::from(INTRO);
    for (path, entries) in sections() {
        let title = match path {
            "" => "Top level".to_owned(),
            "alerts.webhooks" => "`[[alerts.webhooks]]`: one from the environment".to_owned(),
            "id_jag.issuers" => "`[[id_jag.issuers]]`: one from the environment".to_owned(),
            p => format!("`[{p}]`"),
        };
        let _ = write!(
            out,
            "\n## {title}\n\n| Environment | TOML | Default | |\n|---|---|---|---|\n"
        );
        for e in entries {
            let default = if e.default.is_empty() {
                "—".to_owned()
            } else {
                format!("`{}`", e.default)
            };
            let _ = writeln!(
                out,
                "| `{}` | `{}` | {default} | {} |",
                e.env,
                e.toml,
                e.doc.replace('|', "\\|")
            );
        }
    }
    out.push_str(
        "\n## Old names\n\nStill accepted; each use is logged as a warning at start, and when \
         the new name is set too, the new name wins. `DATABASE_URL` is a common convention and \
         stays accepted without a warning.\n\n| Old name (deprecated) | Name |\n|---|---|\n",
    );
    for e in all() {
        for old in e.aliases {
            let _ = writeln!(out, "| `{old}` | `{}` |", e.env);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::PathBuf;

    use super::*;

    fn repo_file(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(name)
    }

    /// `docs/configuration.md` is the reference made from the tables.
    #[test]
    fn docs_list_exactly_the_variables_of_the_tables() {
        let path = repo_file("docs/configuration.md");
        let want = markdown();
        if std::env::var_os("AUTHZ_WRITE_REFERENCE").is_some() {
            std::fs::write(&path, &want).unwrap();
        }
        let have = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            have == want,
            "docs/configuration.md is not the reference of the tables: run \
             AUTHZ_WRITE_REFERENCE=1 cargo test -p authz-core reference"
        );
    }

    /// `.env.example` sets or shows (commented out) every variable by its name, and no old
    /// name.
    #[test]
    fn env_example_lists_exactly_the_variables_of_the_tables() {
        let text = std::fs::read_to_string(repo_file(".env.example")).unwrap();
        let listed: BTreeSet<String> = text
            .lines()
            .map(|l| l.trim_start_matches(['#', ' ']))
            .filter_map(|l| l.split_once('=').map(|(name, _)| name))
            .filter(|n| n.starts_with("AUTHZ_") && !n.contains(' '))
            .map(str::to_owned)
            .collect();
        let want: BTreeSet<String> = all().into_iter().map(|e| e.env).collect();
        assert_eq!(listed, want);
        for old in all().iter().flat_map(|e| e.aliases) {
            assert!(
                old.starts_with("DATABASE_URL") || !text.contains(&format!("{old}=")),
                "{old}"
            );
        }
    }

    /// Names are derived from paths, unique, and no old name is a current one.
    #[test]
    fn every_name_is_its_toml_path() {
        let all = all();
        let mut names = BTreeSet::new();
        for e in &all {
            assert_eq!(
                e.env,
                format!("AUTHZ_{}", e.toml.replace('.', "_").to_uppercase())
            );
            assert!(names.insert(e.env.clone()), "{} twice", e.env);
            assert!(!e.doc.is_empty(), "{} has no doc", e.toml);
        }
        for old in all.iter().flat_map(|e| e.aliases) {
            assert!(names.insert((*old).to_owned()), "{old} is current or twice");
        }
    }

    /// The other docs name variables by their current names (old names only in the
    /// reference's table of them).
    #[test]
    fn other_docs_use_the_current_names() {
        let current: BTreeSet<String> = all().into_iter().map(|e| e.env).collect();
        let others = ["AUTHZ_CONFIG", "AUTHZ_BIN", "AUTHZ_UPDATE_SCREENSHOTS"];
        let mut files = vec![repo_file("README.md")];
        for f in std::fs::read_dir(repo_file("docs")).unwrap() {
            let path = f.unwrap().path();
            if path.extension().is_some_and(|e| e == "md") && !path.ends_with("configuration.md") {
                files.push(path);
            }
        }
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap();
            let word = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_';
            for (at, _) in text.match_indices("AUTHZ_") {
                if at > 0 && word(text.as_bytes()[at - 1]) {
                    continue; // MCP_AUTHZ_URL
                }
                let len = text[at..].bytes().take_while(|b| word(*b)).count();
                let name = &text[at..at + len];
                // Each upstream provider's secret: `AUTHZ_UPSTREAM_<ID>_CLIENT_SECRET`.
                let upstream_secret = name.starts_with("AUTHZ_UPSTREAM_")
                    && (name == "AUTHZ_UPSTREAM_" || name.ends_with("_CLIENT_SECRET"));
                let known = current.contains(name)
                    || others.contains(&name)
                    || upstream_secret
                    || (name.ends_with('_') && current.iter().any(|c| c.starts_with(name)));
                assert!(known, "{}: {name} is not a current name", path.display());
            }
        }
    }
}
