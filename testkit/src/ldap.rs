//! A real directory for one test: OpenLDAP's `slapd` (Debian package `slapd`, installed by
//! `scripts/setup`) started from a `slapd.conf` in a temporary folder, its database loaded
//! with `slapadd` from the test's LDIF, listening on loopback for `ldap://` (StartTLS offered)
//! and `ldaps://`, with a certificate made for the test. Stopped when dropped.
//!
//! The service account `cn=authz,ou=services,<suffix>` (password [`SERVICE_PASSWORD`]) may read
//! people and groups; everyone may bind (auth) with their own password; nothing else is
//! readable anonymously.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

/// The directory's suffix.
pub const SUFFIX: &str = "dc=example,dc=org";
/// The service account's DN and password.
pub const SERVICE_DN: &str = "cn=authz,ou=services,dc=example,dc=org";
pub const SERVICE_PASSWORD: &str = "service pass phrase";
/// The directory's administrator (the test changes entries as it).
pub const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
const ROOT_PASSWORD: &str = "root pass phrase";

/// Where the programs are (Debian puts slapd in /usr/sbin, which a non-root PATH may lack).
fn program(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/sbin"] {
        let p = PathBuf::from(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is not installed: run scripts/setup (Debian package slapd)");
}

/// One person of the seed.
#[derive(Debug, Clone)]
pub struct Person {
    pub uid: String,
    pub password: String,
    pub mail: Option<String>,
    /// `pwdAccountLockedTime` set: locked (the ppolicy attribute).
    pub locked: bool,
    /// `pwdReset` set: an administrator reset the password, which must be changed first (with
    /// the password policy overlay, `start_with_policy`).
    pub reset: bool,
}

impl Person {
    pub fn new(uid: &str, password: &str) -> Self {
        Self {
            uid: uid.into(),
            password: password.into(),
            mail: Some(format!("{uid}@example.org")),
            locked: false,
            reset: false,
        }
    }
}

/// A running `slapd`.
#[derive(Debug)]
pub struct Slapd {
    /// `ldap://127.0.0.1:<port>` (StartTLS offered, or not at all with `tls = false`).
    pub ldap_url: String,
    /// `ldaps://127.0.0.1:<port>`.
    pub ldaps_url: String,
    /// The PEM certificate the directory presents (its own trust anchor).
    pub ca: PathBuf,
    pub dir: tempfile::TempDir,
    child: tokio::process::Child,
}

impl Slapd {
    /// A directory with `people` and `groups` (group cn → member uids), TLS on.
    pub async fn start(people: &[Person], groups: &[(&str, &[&str])]) -> Self {
        Self::start_with(people, groups, true).await
    }

    /// As `start`; without `tls`, the directory offers neither StartTLS nor `ldaps://`.
    pub async fn start_with(people: &[Person], groups: &[(&str, &[&str])], tls: bool) -> Self {
        Self::launch(people, groups, tls, false).await
    }

    /// As `start`, with OpenLDAP's password policy overlay enforcing a default policy that
    /// says a reset password must be changed first (`pwdMustChange`).
    pub async fn start_with_policy(people: &[Person], groups: &[(&str, &[&str])]) -> Self {
        Self::launch(people, groups, true, true).await
    }

    async fn launch(
        people: &[Person],
        groups: &[(&str, &[&str])],
        tls: bool,
        policy: bool,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let (ca, key) = crate::https::self_signed_files(root, "slapd");
        std::fs::create_dir(root.join("db")).unwrap();
        let tls_lines = if tls {
            format!(
                "TLSCertificateFile {}\nTLSCertificateKeyFile {}\n",
                ca.display(),
                key.display()
            )
        } else {
            String::new()
        };
        let policy_lines = if policy {
            format!("overlay ppolicy\nppolicy_default \"cn=default,ou=policies,{SUFFIX}\"\n")
        } else {
            String::new()
        };
        let conf = format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             modulepath /usr/lib/ldap\n\
             moduleload back_mdb\n\
             moduleload ppolicy\n\
             pidfile {root}/slapd.pid\n\
             {tls_lines}\
             database mdb\n\
             maxsize 10485760\n\
             suffix \"{SUFFIX}\"\n\
             rootdn \"{ROOT_DN}\"\n\
             rootpw \"{ROOT_PASSWORD}\"\n\
             directory {root}/db\n\
             {policy_lines}\
             access to attrs=userPassword by anonymous auth by self auth by * none\n\
             access to * by dn.exact=\"{SERVICE_DN}\" read by self read by * none\n",
            root = root.display()
        );
        let conf_path = root.join("slapd.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let ldif_path = root.join("seed.ldif");
        std::fs::write(&ldif_path, seed(people, groups)).unwrap();
        let out = tokio::process::Command::new(program("slapadd"))
            .arg("-f")
            .arg(&conf_path)
            .arg("-l")
            .arg(&ldif_path)
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "slapadd: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (plain, tls_port) = (crate::free_port(), crate::free_port());
        let ldap_url = format!("ldap://127.0.0.1:{plain}");
        let ldaps_url = format!("ldaps://127.0.0.1:{tls_port}");
        let listen = if tls {
            format!("{ldap_url}/ {ldaps_url}/")
        } else {
            format!("{ldap_url}/")
        };
        let child = tokio::process::Command::new(program("slapd"))
            .arg("-f")
            .arg(&conf_path)
            .arg("-h")
            .arg(&listen)
            .arg("-d")
            .arg("0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", plain))
                .await
                .is_ok()
            {
                return Self {
                    ldap_url,
                    ldaps_url,
                    ca,
                    dir,
                    child,
                };
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("slapd did not start listening on {ldap_url}");
    }

    /// A connection bound as the directory's administrator.
    pub async fn admin(&self) -> ldap3::Ldap {
        let (conn, mut ldap) = ldap3::LdapConnAsync::new(&self.ldap_url).await.unwrap();
        ldap3::drive!(conn);
        ldap.simple_bind(ROOT_DN, ROOT_PASSWORD)
            .await
            .unwrap()
            .success()
            .unwrap();
        ldap
    }

    /// Replace the attribute `attr` of the person `uid` with `values` (none: removed).
    pub async fn set(&self, uid: &str, attr: &str, values: &[&str]) {
        let dn = format!("uid={uid},ou=people,{SUFFIX}");
        let values: std::collections::HashSet<&str> = values.iter().copied().collect();
        let mut ldap = self.admin().await;
        ldap.modify(&dn, vec![ldap3::Mod::Replace(attr, values)])
            .await
            .unwrap()
            .success()
            .unwrap();
    }

    /// Replace the members of group `cn` with the people `uids`.
    pub async fn set_members(&self, cn: &str, uids: &[&str]) {
        let dn = format!("cn={cn},ou=groups,{SUFFIX}");
        let members: Vec<String> = uids
            .iter()
            .map(|u| format!("uid={u},ou=people,{SUFFIX}"))
            .collect();
        let values: std::collections::HashSet<&str> = members.iter().map(String::as_str).collect();
        let mut ldap = self.admin().await;
        ldap.modify(&dn, vec![ldap3::Mod::Replace("member", values)])
            .await
            .unwrap()
            .success()
            .unwrap();
    }

    /// Delete the person `uid`.
    pub async fn delete(&self, uid: &str) {
        let mut ldap = self.admin().await;
        ldap.delete(&format!("uid={uid},ou=people,{SUFFIX}"))
            .await
            .unwrap()
            .success()
            .unwrap();
    }

    /// Stop the directory (an outage).
    pub async fn stop(&mut self) {
        let _ = self.child.kill().await;
    }
}

fn seed(people: &[Person], groups: &[(&str, &[&str])]) -> String {
    let mut out = format!(
        "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\n\
         dc: example\n\n\
         dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=services,{SUFFIX}\nobjectClass: organizationalUnit\nou: services\n\n\
         dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n\n\
         dn: {SERVICE_DN}\nobjectClass: person\ncn: authz\nsn: service\n\
         userPassword: {SERVICE_PASSWORD}\n\n\
         dn: ou=policies,{SUFFIX}\nobjectClass: organizationalUnit\nou: policies\n\n\
         dn: cn=default,ou=policies,{SUFFIX}\nobjectClass: person\nobjectClass: pwdPolicy\n\
         cn: default\nsn: default\npwdAttribute: userPassword\npwdMustChange: TRUE\n\n"
    );
    for p in people {
        out.push_str(&format!(
            "dn: uid={uid},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\n\
             cn: {uid}\nsn: {uid}\ndisplayName: {uid} of the directory\nuserPassword: {pw}\n",
            uid = p.uid,
            pw = p.password
        ));
        if let Some(mail) = &p.mail {
            out.push_str(&format!("mail: {mail}\n"));
        }
        if p.locked {
            out.push_str("pwdAccountLockedTime: 000001010000Z\n");
        }
        if p.reset {
            out.push_str("pwdReset: TRUE\n");
        }
        out.push('\n');
    }
    for (cn, members) in groups {
        out.push_str(&format!(
            "dn: cn={cn},ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: {cn}\n"
        ));
        for m in *members {
            out.push_str(&format!("member: uid={m},ou=people,{SUFFIX}\n"));
        }
        out.push('\n');
    }
    out
}
