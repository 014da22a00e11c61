//! The layering the crates promise, checked against Cargo's own dependency graph
//! (`cargo metadata`): the core knows no web framework, and nothing below the web edge
//! depends on it. The one HTTP *client* the core uses (reqwest, for the guarded outbound
//! fetcher) is built on hyper and tower internally; those are allowed under reqwest only,
//! never reached any other way. A positive control beside each rule: the web edge does
//! depend on axum.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use serde_json::Value;

/// What the core must never reach, through any crate.
const WEB_FRAMEWORK: &[&str] = &["axum", "axum-core", "askama", "askama_web"];
/// What the core reaches only inside its HTTP client (reqwest).
const SERVER_STACK: &[&str] = &["tower", "tower-http", "tower-layer", "hyper", "hyper-util"];

/// The names of every crate `root` depends on at run time (normal dependencies, transitively),
/// not walking into the crates named in `opaque`.
fn runtime_closure(metadata: &Value, root: &str, opaque: &[&str]) -> BTreeSet<String> {
    let packages: HashMap<&str, &str> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let nodes: HashMap<&str, &Value> = metadata["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let start = packages
        .iter()
        .find(|(_, name)| **name == root)
        .map(|(id, _)| *id)
        .unwrap_or_else(|| panic!("{root} is not in the workspace"));
    let mut seen = BTreeSet::new();
    let mut todo = vec![start];
    while let Some(id) = todo.pop() {
        for dep in nodes[id]["deps"].as_array().unwrap() {
            let runtime = dep["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].is_null());
            let dep_id = dep["pkg"].as_str().unwrap();
            let name = packages[dep_id];
            if runtime && seen.insert(name.to_owned()) && !opaque.contains(&name) {
                todo.push(dep_id);
            }
        }
    }
    seen
}

fn metadata() -> Value {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_core_knows_no_web_framework_and_nothing_below_the_web_edge_depends_on_it() {
    let m = metadata();
    let core = runtime_closure(&m, "authz-core", &[]);
    let found: Vec<_> = WEB_FRAMEWORK
        .iter()
        .filter(|c| core.contains(**c))
        .collect();
    assert!(found.is_empty(), "authz-core reaches {found:?}");
    assert!(
        !core.contains("authz-web"),
        "authz-core depends on authz-web"
    );
    let outside_client = runtime_closure(&m, "authz-core", &["reqwest"]);
    let found: Vec<_> = SERVER_STACK
        .iter()
        .filter(|c| outside_client.contains(**c))
        .collect();
    assert!(
        found.is_empty(),
        "authz-core reaches {found:?} outside reqwest"
    );
    // Positive controls: the same walks see the framework under the web edge, and the
    // server stack under the web edge even with reqwest left opaque.
    let web = runtime_closure(&m, "authz-web", &["reqwest"]);
    for c in [
        "axum",
        "askama",
        "tower",
        "tower-http",
        "hyper",
        "authz-core",
    ] {
        assert!(web.contains(c), "authz-web should reach {c}");
    }
}
