//! Security alerts: chosen audit event kinds (lockouts, refresh reuse, code replays, key and
//! administrative changes) sent to configured webhooks as HMAC-signed JSON.
//!
//! - **Never in the way.** A matching event is only queued (one insert, in storage, beside the
//!   audit record); a background task delivers. A webhook that is down or hangs never slows
//!   sign-in: the request that caused the event has long been answered.
//! - **Persisted, bounded, retried.** The queue is a table, so alerts survive a restart and
//!   every replica delivers from the same queue (each alert claimed by one replica at a time;
//!   delivery is at least once, so receivers dedupe on `X-Authz-Alert-Id`). Failed deliveries back off exponentially
//!   (1 s, 2 s, 4 s … at most 5 min) for up to [`MAX_ATTEMPTS`] attempts; at most
//!   [`MAX_QUEUED`] alerts wait (the oldest are dropped, loudly).
//! - **Signed.** `X-Authz-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`
//!   with `X-Authz-Timestamp` (unix seconds) and `X-Authz-Alert-Id`, so a receiver checks the
//!   sender and refuses replays (compare in constant time; reject old timestamps).

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::clock::Clock;
use crate::config::Config;
use crate::store::{AlertStore, AuditEvent, QueuedAlert};

/// Delivery attempts before an alert is given up (and logged).
pub(crate) const MAX_ATTEMPTS: i64 = 20;
/// The most alerts waiting at once.
pub(crate) const MAX_QUEUED: i64 = 10_000;
/// How long one delivery may take.
pub const DELIVERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether `kind` is one a webhook asked for (`*` at the end matches a prefix).
pub fn wants(kinds: &[String], kind: &str) -> bool {
    kinds.iter().any(|k| match k.strip_suffix('*') {
        Some(prefix) => kind.starts_with(prefix),
        None => k == kind,
    })
}

/// Queue `event` for every webhook that wants its kind.
pub async fn enqueue(config: &Config, store: &dyn AlertStore, event: &AuditEvent) {
    let hooks = &config.alerts.webhooks;
    // Every audited event passes here (token issuance too): nothing is built unless a webhook
    // wants this kind.
    if !hooks.iter().any(|h| wants(&h.kinds, &event.kind)) {
        return;
    }
    let body = json!({
        "id": shared::crypto::random_id("alert_"),
        "issuer": config.issuer,
        "kind": event.kind,
        "outcome": event.outcome.as_str(),
        "ts": event.ts,
        "actor": event.actor,
        "subject": event.subject,
        "client_id": event.client_id,
        "ip": event.ip,
        "details": event.details,
    });
    for (i, hook) in hooks.iter().enumerate() {
        if !wants(&hook.kinds, &event.kind) {
            continue;
        }
        let alert = QueuedAlert {
            id: body["id"].as_str().unwrap_or_default().to_owned() + &format!(".{i}"),
            webhook: i as i64,
            body: body.to_string(),
            created_at: event.ts,
        };
        if let Err(e) = store.queue_alert(&alert, MAX_QUEUED).await {
            tracing::error!(error = %e, kind = %event.kind, "queueing a security alert failed");
        }
    }
}

/// A webhook's host for logs: webhook URLs often carry a secret in their path or query
/// (Slack-style), so the URL itself is never logged.
fn host_of(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

/// The signature header value for `body` sent at `ts` with `secret`.
pub fn signature(secret: &str, ts: i64, body: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = aws_lc_rs::hmac::sign(&key, format!("{ts}.{body}").as_bytes());
    let mut hex = String::with_capacity(71);
    hex.push_str("sha256=");
    for b in tag.as_ref() {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// Deliver due alerts until the task is aborted: every second, or at once after a delivery.
pub async fn deliver_forever(
    config: Arc<Config>,
    store: Arc<dyn AlertStore>,
    clock: Arc<dyn Clock>,
) {
    let http = match reqwest::Client::builder()
        .timeout(DELIVERY_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "alert delivery disabled: no HTTP client");
            return;
        }
    };
    loop {
        let delivered = deliver_due(&config, &*store, &*clock, &http).await;
        if delivered == 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// One pass over the due alerts: how many were delivered.
pub(crate) async fn deliver_due(
    config: &Config,
    store: &dyn AlertStore,
    clock: &dyn Clock,
    http: &reqwest::Client,
) -> usize {
    let now = clock.now();
    let due = match store.due_alerts(now, 20).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "reading the alert queue failed");
            return 0;
        }
    };
    let mut delivered = 0;
    for alert in due {
        // Claim it first (another replica may be delivering the same queue): whoever moves its
        // next attempt on delivers it.
        match store.claim_alert(&alert.id, now, now + 30).await {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "claiming an alert failed");
                continue;
            }
        }
        let Some(hook) = usize::try_from(alert.webhook)
            .ok()
            .and_then(|i| config.alerts.webhooks.get(i))
        else {
            // The configuration changed: nobody to send it to.
            let _ = store.delete_alert(&alert.id).await;
            continue;
        };
        let ts = clock.now();
        let sent = http
            .post(&hook.url)
            .header("content-type", "application/json")
            .header("x-authz-alert-id", &alert.id)
            .header("x-authz-timestamp", ts.to_string())
            .header(
                "x-authz-signature",
                signature(hook.secret.expose(), ts, &alert.body),
            )
            .body(alert.body.clone())
            .send()
            .await;
        let ok = matches!(&sent, Ok(r) if r.status().is_success());
        let result = if ok {
            delivered += 1;
            store.delete_alert(&alert.id).await
        } else if alert.attempts + 1 >= MAX_ATTEMPTS {
            tracing::error!(id = %alert.id, host = %host_of(&hook.url), "security alert given up after {MAX_ATTEMPTS} attempts");
            store.delete_alert(&alert.id).await
        } else {
            let wait = (1_i64 << alert.attempts.clamp(0, 8)).min(300);
            tracing::warn!(id = %alert.id, host = %host_of(&hook.url), retry_in = wait,
                status = sent.as_ref().ok().map(|r| r.status().as_u16()),
                "security alert not delivered; retrying");
            store
                .retry_alert(&alert.id, alert.attempts + 1, ts + wait)
                .await
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "updating the alert queue failed");
        }
    }
    delivered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_match_exactly_or_by_prefix() {
        let kinds = vec!["login.locked".to_owned(), "key.*".to_owned()];
        assert!(wants(&kinds, "login.locked"));
        assert!(wants(&kinds, "key.rotated"));
        assert!(!wants(&kinds, "login.failed"));
        assert!(!wants(&[], "login.locked"));
    }

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_and_body() {
        // RFC 4231 test case 2 shape: key "Jefe".
        let sig = signature("Jefe", 0, "what do ya want for nothing?");
        assert!(sig.starts_with("sha256="));
        assert_eq!(sig.len(), 7 + 64);
        assert_ne!(sig, signature("Jefe", 1, "what do ya want for nothing?"));
    }
}
