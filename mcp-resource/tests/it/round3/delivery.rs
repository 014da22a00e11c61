//! Issue 24 findings at the MCP server:
//!
//! - item 12: a revocation signed by a key this server has not fetched yet (an emergency
//!   rotation) used to be answered with `setErrs`, which the transmitter takes as final: the
//!   revoked session's token kept working until it expired. Now the event stays
//!   unacknowledged, comes again, and is applied once the key refetch (rate-limited by
//!   `MCP_JWKS_MIN_REFETCH_SECS`) has found the key.
//! - item 17: a withdrawn signing key (`authz keys revoke`) is dropped by this server's
//!   verifier at its next JWKS fetch: tokens it signed are refused from then on.

use std::time::{Duration, Instant};

use authz::keys::KeySwitch;
use authz::keys::SigningAlg;
use reqwest::StatusCode;
use testkit::both_backends;

use crate::support::{Backend, System, initialize};

both_backends!(
    item_12_a_revocation_signed_by_a_key_not_fetched_yet_is_applied_after_the_key_refetch,
    item_17_a_withdrawn_key_is_refused_at_the_mcp_server_after_its_refetch,
);

/// The MCP server's JWKS refetch interval here: a SET signed by a new key that arrives within
/// this long after a fetch finds its key unknown (the condition of the issue).
const REFETCH_SECS: u64 = 5;

async fn status(sys: &System, token: &str) -> StatusCode {
    sys.post(Some(token), &initialize()).await.status()
}

/// Wait (bounded by `limit`) until the MCP server refuses `token` as `invalid_token`.
async fn refused_within(sys: &System, token: &str, limit: Duration, what: &str) {
    let start = Instant::now();
    loop {
        let r = sys.post(Some(token), &initialize()).await;
        if r.status() == StatusCode::UNAUTHORIZED {
            let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
            assert!(challenge.contains("invalid_token"), "{challenge}");
            return;
        }
        assert_eq!(r.status(), StatusCode::OK);
        assert!(start.elapsed() < limit, "{what}: still accepted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// RFC 7009: the demo CLI client revokes its token, ending its session (a
/// `session-revoked` event for the MCP server).
async fn revoke(sys: &System, token: &str) {
    let r = sys
        .http
        .post(format!("{}/revoke", sys.authz_url))
        .form(&[
            ("token", token),
            ("client_id", authz::seed::DEMO_CLI_CLIENT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

fn kid(jwt: &str) -> String {
    jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap()
}

async fn item_12_a_revocation_signed_by_a_key_not_fetched_yet_is_applied_after_the_key_refetch(
    backend: Backend,
) {
    // The transmitter gives up on an event at its first refusal here: only the receiver's
    // leaving it unacknowledged can bring it again (the transmitter's retries of refused
    // events are `authz` round3::delivery::item_12_…).
    let sys = System::start_tweaked(
        backend,
        |a| a.ssf.max_set_errors = 1,
        |m| {
            m.ssf_poll_secs = 1;
            m.jwks_min_refetch_secs = REFETCH_SECS;
        },
    )
    .await;
    let limit = Duration::from_secs(6 * REFETCH_SECS);

    // Positive control: a revocation signed by a key the server holds is applied.
    let plain = sys.user_token("testuser").await;
    assert_eq!(status(&sys, &plain).await, StatusCode::OK);
    revoke(&sys, &plain).await;
    refused_within(&sys, &plain, limit, "a plain revocation").await;

    // The issue: the server has just fetched the JWKS (its next refetch for an unknown kid
    // must wait REFETCH_SECS), an emergency rotation switches the signing key at once, and a
    // session is revoked: its event is signed by the new key.
    let token = sys.user_token("testuser").await;
    let other = sys.user_token("testuser").await;
    assert_eq!(status(&sys, &token).await, StatusCode::OK);
    sys.mcp.verifier.refresh(true).await.unwrap();
    let fetches = sys.mcp.verifier.jwks_fetches();
    let (new_kid, _) = sys
        .authz
        .key_admin()
        .rotate_keys("test", SigningAlg::Es256, KeySwitch::Now)
        .await
        .unwrap();
    assert_ne!(kid(&token), new_kid);
    revoke(&sys, &token).await;
    // The event comes again until the key refetch finds its key; then it is applied.
    refused_within(&sys, &token, limit, "a revocation signed by the new key").await;
    assert!(
        sys.mcp.verifier.jwks_fetches() > fetches,
        "the keys were fetched again"
    );
    sys.authz.audit_log.flush().await;
    let recent = sys.authz.store.recent(1000).await.unwrap();
    assert!(
        !recent.iter().any(|e| e.kind == "ssf.event_dropped"),
        "the receiver never refused the event"
    );
    assert_eq!(
        status(&sys, &other).await,
        StatusCode::OK,
        "another session of the same user"
    );
}

async fn item_17_a_withdrawn_key_is_refused_at_the_mcp_server_after_its_refetch(backend: Backend) {
    let sys = System::start_with(backend, |m| m.ssf_poll_secs = 0).await;
    let old = sys.user_token("testuser").await;
    let old_kid = kid(&old);
    assert_eq!(status(&sys, &old).await, StatusCode::OK);

    // `authz keys revoke <active kid>`: a new key signs from now on, the old one is gone from
    // the JWKS.
    let withdrawn = sys
        .authz
        .key_admin()
        .withdraw_key("test", &old_kid)
        .await
        .unwrap();
    let new = sys.user_token("testuser").await;
    assert_eq!(Some(kid(&new)), withdrawn.replaced_by);

    // The first token of the new key makes the server fetch the JWKS again (unknown kid; at
    // most once per MCP_JWKS_MIN_REFETCH_SECS, so wait for it) …
    let deadline = Instant::now() + Duration::from_secs(15);
    while status(&sys, &new).await != StatusCode::OK {
        assert!(Instant::now() < deadline, "the new key's token is accepted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // … and that JWKS no longer has the withdrawn key: its tokens are refused.
    let r = sys.post(Some(&old), &initialize()).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("invalid_token"), "{challenge}");
    assert_eq!(status(&sys, &new).await, StatusCode::OK);
}
