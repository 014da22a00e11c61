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

/// The whole `/readyz` answer of a server: its database (the error logged), the keys it holds,
/// and, when its rate-limit counters are in Redis, Redis (with the fail-open count): 200 when
/// all are ready, else 503, with the JSON body that says which.
#[cfg(feature = "limits")]
pub async fn answer(
    database: Result<(), impl std::fmt::Display>,
    keys: Check,
    counters: &crate::limits::Counters,
) -> (u16, serde_json::Value) {
    if let Err(e) = &database {
        tracing::error!(error = %e, "readiness: database unavailable");
    }
    let mut checks = vec![Check::reachable("database", database.is_ok()), keys];
    checks.extend(counters.readiness().await);
    let (ready, mut body) = readiness(&checks);
    counters.annotate(&mut body);
    (if ready { 200 } else { 503 }, body)
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
