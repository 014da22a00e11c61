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

/// The keys of `group_roles` that `groups` (DNs) match, as `account::resolve` looks them up.
pub fn matched_groups(group_roles: &BTreeMap<String, String>, groups: &[String]) -> Vec<String> {
    group_roles
        .keys()
        .filter(|key| {
            groups.iter().any(|dn| {
                dn.trim().eq_ignore_ascii_case(key.trim())
                    || first_rdn_value(dn).eq_ignore_ascii_case(key.trim())
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
    fn groups_match_by_dn_or_first_rdn_in_any_case() {
        let map = BTreeMap::from([
            ("cn=Admins,ou=groups,dc=x".to_owned(), "admin".to_owned()),
            ("readers".to_owned(), "readonly".to_owned()),
            ("nobody".to_owned(), "user".to_owned()),
        ]);
        let got = matched_groups(
            &map,
            &["CN=admins,OU=groups,DC=x".into(), "cn=Readers,ou=g".into()],
        );
        assert_eq!(got, vec!["cn=Admins,ou=groups,dc=x", "readers"]);
        assert!(matched_groups(&map, &["cn=admins-old,ou=g".into()]).is_empty());
    }
}
