//! The layering the crates promise, checked against Cargo's own resolution (`cargo tree`, with
//! each crate's features resolved as when it is built alone): the core knows no web framework,
//! and nothing below the web edge depends on it. The one HTTP *client* the core uses (reqwest,
//! for the guarded outbound fetcher) is built on hyper and tower internally; those are allowed
//! inside reqwest only, never reached any other way. Positive controls beside each rule: the
//! same walk over the web edge does see the framework.
//!
//! One crypto stack (docs/architecture.md, decision record "One crypto stack"): OpenSSL comes
//! in through webauthn-rs alone, behind the cargo feature `passkeys`; without it the server
//! reaches neither.

use std::collections::BTreeSet;
use std::process::Command;

/// What the core must never reach, through any crate.
const WEB_FRAMEWORK: &[&str] = &["axum", "axum-core", "askama", "authz-web"];
/// What the core may reach only inside its HTTP client.
const SERVER_STACK: &[&str] = &["tower", "tower-http", "tower-layer", "hyper", "hyper-util"];

/// What brings OpenSSL into the build: webauthn-rs (passkeys), and OpenSSL itself. (The
/// pure-Rust `openssl-probe`, which only looks for the system's certificate directories for
/// rustls-native-certs, is neither.)
const OPENSSL: &[&str] = &["openssl", "openssl-sys", "webauthn-rs", "webauthn-rs-core"];

/// Every crate `package` depends on at run time (normal dependencies, transitively), with the
/// subtrees of `prune` left out.
fn runtime_closure(package: &str, prune: Option<&str>) -> BTreeSet<String> {
    closure_of(package, prune, &[])
}

/// [`runtime_closure`] with more `cargo tree` arguments (features).
fn closure_of(package: &str, prune: Option<&str>, extra: &[&str]) -> BTreeSet<String> {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["tree", "--locked", "-e", "normal", "--prefix", "none"])
        .args(["--format", "{p}", "-p", package])
        .args(extra)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if let Some(p) = prune {
        cmd.args(["--prune", p]);
    }
    let out = cmd.output().expect("cargo tree runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

fn reached<'a>(closure: &BTreeSet<String>, names: &[&'a str]) -> Vec<&'a str> {
    names
        .iter()
        .copied()
        .filter(|n| closure.contains(*n))
        .collect()
}

#[test]
fn the_core_knows_no_web_framework_and_nothing_below_the_web_edge_depends_on_it() {
    let core = runtime_closure("authz-core", None);
    assert!(core.contains("reqwest"), "the walk sees the core's client");
    assert_eq!(reached(&core, WEB_FRAMEWORK), Vec::<&str>::new());
    let outside_client = runtime_closure("authz-core", Some("reqwest"));
    assert_eq!(reached(&outside_client, SERVER_STACK), Vec::<&str>::new());
    // Positive controls: the same walks over the web edge see the framework, and the server
    // stack even with reqwest pruned.
    let web = runtime_closure("authz-web", Some("reqwest"));
    assert_eq!(reached(&web, &["axum", "askama"]), ["axum", "askama"]);
    assert_eq!(reached(&web, SERVER_STACK), SERVER_STACK);
    assert!(web.contains("authz-core"));
}

#[test]
fn without_the_passkeys_feature_the_server_reaches_no_openssl() {
    let without = closure_of("authz", None, &["--no-default-features"]);
    assert!(without.contains("authz-core") && without.contains("rustls"));
    assert_eq!(reached(&without, OPENSSL), Vec::<&str>::new());
    // Positive control: the default build (passkeys on) reaches them, through webauthn-rs.
    let default = runtime_closure("authz", None);
    assert_eq!(reached(&default, OPENSSL), OPENSSL);
    let beside = runtime_closure("authz", Some("webauthn-rs"));
    assert_eq!(reached(&beside, OPENSSL), Vec::<&str>::new());
}

/// Runs `scripts/lib/upward-imports` of the tree at `root`: (success, what it printed).
fn upward_imports(root: &std::path::Path) -> (bool, String) {
    let out = Command::new("bash")
        .arg(root.join("scripts/lib/upward-imports"))
        .output()
        .expect("bash runs the layering check");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Inside `authz-core` the folders are layered (docs/architecture.md): no module names a higher
/// one, and the files of one folder name each other without cycles. Positive control: the same
/// check over a copy of the crate with one upward import (the store naming the protocol) and
/// one cycle added reports both.
#[test]
fn authz_core_imports_only_downward_and_without_cycles() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let (ok, printed) = upward_imports(root);
    assert!(ok, "upward imports or cycles in authz-core:\n{printed}");

    let copy = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(copy.path().join("scripts/lib")).unwrap();
    std::fs::create_dir_all(copy.path().join("authz-core")).unwrap();
    std::fs::copy(
        root.join("scripts/lib/upward-imports"),
        copy.path().join("scripts/lib/upward-imports"),
    )
    .unwrap();
    let cp = Command::new("cp")
        .arg("-r")
        .arg(root.join("authz-core/src"))
        .arg(copy.path().join("authz-core/src"))
        .status()
        .unwrap();
    assert!(cp.success());
    let append = |file: &str, line: &str| {
        let path = copy.path().join("authz-core/src").join(file);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(line);
        std::fs::write(path, text).unwrap();
    };
    append("store/device.rs", "\nuse crate::protocol::pkce;\n");
    append("outbound/guard.rs", "\nuse super::key_sets::KeySet;\n");
    append("outbound/key_sets.rs", "\nuse super::guard::Guard;\n");
    let (ok, printed) = upward_imports(copy.path());
    assert!(
        !ok,
        "the planted import and cycle were not seen:\n{printed}"
    );
    assert!(printed.contains("store/device.rs"), "{printed}");
    assert!(printed.contains("crate::protocol::pkce"), "{printed}");
    assert!(
        printed.contains("cycle in authz-core/src/outbound/"),
        "{printed}"
    );
}
