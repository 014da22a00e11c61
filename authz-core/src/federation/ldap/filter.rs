//! Search filters from the configured templates, with every value that came from outside
//! escaped (RFC 4515 §3: `*`, `(`, `)`, `\` and NUL as `\XX`), so what a person types is always
//! one assertion value and never changes the filter's structure (`*)(uid=*` stays a name).
//! And the groups the directory names, matched against `group_roles` (a group's DN, or the
//! value of its first RDN, in any case).

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// `value` as an RFC 4515 assertion value.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '*' | '(' | ')' | '\\' | '\0' => {
                let _ = write!(out, "\\{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Raw bytes (a binary id such as Active Directory's `objectGUID`) as an assertion value.
pub fn escape_bytes(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "\\{b:02x}");
        out
    })
}

/// `template` with each `{name}` replaced by its value, escaped.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = template.to_owned();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), &escape(value));
    }
    out
}

/// The value of a DN's first RDN (`cn=Admins,ou=groups,…` → `Admins`); the DN itself when it
/// has no `=`.
fn first_rdn_value(dn: &str) -> &str {
    let first = dn.split(',').next().unwrap_or(dn);
    first.split_once('=').map_or(first, |(_, v)| v).trim()
}

/// A DN compared: lower case, no spaces around the separators (RFC 4514's string form is not
/// canonical; this is enough for the same directory's own answers).
fn normal_dn(dn: &str) -> String {
    dn.split(',')
        .map(|rdn| {
            rdn.split('=')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join("=")
                .to_lowercase()
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Is `dn` under `base` (strictly below it)?
fn under(dn: &str, base: &str) -> bool {
    let (dn, base) = (normal_dn(dn), normal_dn(base));
    dn.len() > base.len() && dn.ends_with(&format!(",{base}"))
}

/// The keys of `group_roles` that `groups` (DNs) match, as `account::resolve` looks them up.
/// A key with `=` is a whole DN; a short key (a group's first RDN value, e.g. its `cn`) names
/// only a group under `group_base` — never a group of the same name elsewhere, which a user
/// may be able to create (issue 26 LDAP review F1). With `group_base`, groups outside it do not
/// count at all.
pub fn matched_groups(
    group_roles: &BTreeMap<String, String>,
    groups: &[String],
    group_base: Option<&str>,
) -> Vec<String> {
    let counted: Vec<&String> = groups
        .iter()
        .filter(|dn| group_base.is_none_or(|base| under(dn, base)))
        .collect();
    group_roles
        .keys()
        .filter(|key| {
            counted.iter().any(|dn| {
                if key.contains('=') {
                    normal_dn(dn) == normal_dn(key)
                } else {
                    group_base.is_some() && first_rdn_value(dn).eq_ignore_ascii_case(key.trim())
                }
            })
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn injection_stays_one_value() {
        assert_eq!(escape("*)(uid=*"), "\\2a\\29\\28uid=\\2a");
        assert_eq!(escape("a\\b\0"), "a\\5cb\\00");
        assert_eq!(escape("José"), "José");
        let f = fill(
            "(&(objectClass=person)(uid={username}))",
            &[("username", "*")],
        );
        assert_eq!(f, "(&(objectClass=person)(uid=\\2a))");
        assert!(ldap3::parse_filter(&f).is_ok());
        let evil = fill(
            "(&(objectClass=person)(uid={username}))",
            &[("username", "x)(|(uid=*")],
        );
        assert!(ldap3::parse_filter(&evil).is_ok());
        assert_eq!(evil.matches('(').count(), 3);
        assert_eq!(escape_bytes(&[0x01, 0xab]), "\\01\\ab");
    }

    #[test]
    fn groups_match_by_dn_or_by_name_under_the_group_base_only() {
        let map = BTreeMap::from([
            ("cn=Admins,ou=groups,dc=x".to_owned(), "admin".to_owned()),
            ("readers".to_owned(), "readonly".to_owned()),
            ("nobody".to_owned(), "user".to_owned()),
        ]);
        let base = Some("ou=groups,dc=x");
        let got = matched_groups(
            &map,
            &[
                "CN=admins, OU=groups,DC=x".into(),
                "cn=Readers,ou=groups,dc=x".into(),
            ],
            base,
        );
        assert_eq!(got, vec!["cn=Admins,ou=groups,dc=x", "readers"]);
        // A group of the same name elsewhere (one a user could create) is not it.
        let planted = ["cn=readers,ou=usergroups,dc=x".to_owned()];
        assert!(matched_groups(&map, &planted, base).is_empty());
        let planted_admin = ["cn=Admins,ou=groups,ou=usergroups,dc=x".to_owned()];
        assert!(matched_groups(&map, &planted_admin, base).is_empty());
        // Without a group base, only whole DNs count.
        assert!(matched_groups(&map, &["cn=readers,ou=groups,dc=x".into()], None).is_empty());
        assert_eq!(
            matched_groups(&map, &["cn=admins,ou=groups,dc=x".into()], None),
            vec!["cn=Admins,ou=groups,dc=x"]
        );
        assert!(matched_groups(&map, &["cn=admins-old,ou=groups,dc=x".into()], base).is_empty());
    }
}
