//! The layering the crates promise, checked against Cargo's own resolution (`cargo tree`, with
//! each crate's features resolved as when it is built alone): the core knows no web framework,
//! and nothing below the web edge depends on it. The one HTTP *client* the core uses (reqwest,
//! for the guarded outbound fetcher) is built on hyper and tower internally; those are allowed
//! inside reqwest only, never reached any other way. Positive controls beside each rule: the
//! same walk over the web edge does see the framework.

use std::collections::BTreeSet;
use std::process::Command;

/// What the core must never reach, through any crate.
const WEB_FRAMEWORK: &[&str] = &["axum", "axum-core", "askama", "authz-web"];
/// What the core may reach only inside its HTTP client.
const SERVER_STACK: &[&str] = &["tower", "tower-http", "tower-layer", "hyper", "hyper-util"];

/// Every crate `package` depends on at run time (normal dependencies, transitively), with the
/// subtrees of `prune` left out.
fn runtime_closure(package: &str, prune: Option<&str>) -> BTreeSet<String> {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["tree", "--locked", "-e", "normal", "--prefix", "none"])
        .args(["--format", "{p}", "-p", package])
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
