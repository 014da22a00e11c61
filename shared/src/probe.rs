//! The readiness answer both servers give on `/readyz`: each dependency checked, named with
//! its state, and the whole ready only when every one is.

/// One checked dependency: its name in the answer, whether it is usable, and the words for
/// its two states (`"up"`/`"down"`, `"loaded"`/`"missing"`).
#[derive(Debug, Clone, Copy)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub good: &'static str,
    pub bad: &'static str,
}

impl Check {
    /// A reachable-or-not dependency (`up`/`down`).
    pub const fn reachable(name: &'static str, ok: bool) -> Self {
        Self {
            name,
            ok,
            good: "up",
            bad: "down",
        }
    }

    /// Something held or not (`loaded`/`missing`).
    pub const fn loaded(name: &'static str, ok: bool) -> Self {
        Self {
            name,
            ok,
            good: "loaded",
            bad: "missing",
        }
    }
}

/// Whether all `checks` pass (answer 200, else 503), and the JSON body that says which.
pub fn readiness(checks: &[Check]) -> (bool, serde_json::Value) {
    let ready = checks.iter().all(|c| c.ok);
    let mut body = serde_json::Map::new();
    body.insert(
        "status".into(),
        (if ready { "ready" } else { "unavailable" }).into(),
    );
    for c in checks {
        body.insert(c.name.into(), (if c.ok { c.good } else { c.bad }).into());
    }
    (ready, serde_json::Value::Object(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_check_passes() {
        let (ready, body) = readiness(&[
            Check::reachable("database", true),
            Check::loaded("keys", true),
        ]);
        assert!(ready);
        assert_eq!(
            body,
            serde_json::json!({"status": "ready", "database": "up", "keys": "loaded"})
        );
        let (ready, body) = readiness(&[
            Check::reachable("database", false),
            Check::loaded("keys", true),
        ]);
        assert!(!ready);
        assert_eq!(body["status"], "unavailable");
        assert_eq!(body["database"], "down");
    }
}
