//! Issue 24 findings at the authorization server:
//!
//! - item 12: a security event its receiver refused (RFC 8936 `setErrs`) is delivered again, a
//!   bounded number of times, then dropped and audited (`ssf.event_dropped`); it used to count
//!   as acknowledged at once.
//! - item 17: `authz keys revoke <kid>` and the console's "Withdraw" take a signing key out of
//!   the JWKS at once, on every replica, and authz itself refuses the tokens it signed
//!   (userinfo, introspection); refresh tokens keep working and yield tokens under the new key.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use authz::state::AppState;
use authz::store::AuthMethod;
use serde_json::{Value, json};
use testkit::agent::{FormAgent, Page, hidden_inputs};
use testkit::both_backends;

use crate::support::{Backend, MCP, TestApp, console_agent, console_sign_in, expect_token};

both_backends!(
    item_12_a_set_refused_with_set_errs_is_delivered_again_up_to_the_bound_then_audited_as_dropped,
    item_17_keys_revoke_unpublishes_the_key_on_every_replica_and_authz_refuses_its_tokens,
    item_17_the_console_withdraws_a_key_with_csrf_and_a_recent_sign_in_audited_as_the_admin,
    item_17_a_queued_event_signed_by_a_withdrawn_key_is_delivered_signed_by_the_new_key,
);

const PW: &str = "correct horse battery staple";
/// The receiver of the Shared Signals tests (a confidential client).
const RX: &str = "rx";
/// Longer than any pause between two deliveries of a refused event.
const PAST_ANY_PAUSE: i64 = 3600;

/// An app whose one Shared Signals receiver is `RX`; its secret.
async fn receiver_app(backend: Backend) -> (TestApp, String) {
    let app = TestApp::spawn_with(backend, |c| c.ssf.receivers = vec![RX.into()]).await;
    let secret = app.service_client(RX, "notes:read").await;
    (app, secret)
}

/// One RFC 8936 poll as `RX`: the answer.
async fn poll(app: &TestApp, secret: &str, body: Value) -> Value {
    let r = app
        .http
        .post(app.url("/ssf/poll"))
        .basic_auth(RX, Some(secret))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn delivered(answer: &Value, jti: &str) -> bool {
    answer["sets"].get(jti).is_some()
}

/// The only SET of a poll answer: (jti, SET).
fn only_set(answer: &Value) -> (String, String) {
    let sets = answer["sets"].as_object().unwrap();
    assert_eq!(sets.len(), 1, "{answer}");
    let (jti, set) = sets.iter().next().unwrap();
    (jti.clone(), set.as_str().unwrap().to_owned())
}

fn refusal(jti: &str, err: &str) -> Value {
    json!({ "returnImmediately": true,
            "setErrs": { jti: { "err": err, "description": "the receiver could not process it" } } })
}

async fn dropped_events(app: &TestApp) -> Vec<authz::store::AuditEvent> {
    app.audit_of("ssf.event_dropped").await
}

async fn item_12_a_set_refused_with_set_errs_is_delivered_again_up_to_the_bound_then_audited_as_dropped(
    backend: Backend,
) {
    let (app, secret) = receiver_app(backend).await;
    app.user("alice", PW, "user").await;
    app.user("bob", PW, "user").await;
    let now = json!({ "returnImmediately": true });

    // Positive control: an event refused once, delivered again, then acknowledged: gone for
    // good, and nothing is reported as dropped.
    app.set_disabled("test", "bob", true).await;
    let (jti, _) = only_set(&poll(&app, &secret, now.clone()).await);
    let answer = poll(&app, &secret, refusal(&jti, "invalid_key")).await;
    assert!(!delivered(&answer, &jti), "not at once: after a pause");
    app.clock.advance(PAST_ANY_PAUSE);
    let again = poll(&app, &secret, now.clone()).await;
    assert!(
        delivered(&again, &jti),
        "an event the receiver refused is delivered again: {again}"
    );
    let acked = poll(
        &app,
        &secret,
        json!({ "returnImmediately": true, "ack": [jti] }),
    )
    .await;
    assert!(!delivered(&acked, &jti));
    app.clock.advance(PAST_ANY_PAUSE);
    assert!(!delivered(&poll(&app, &secret, now.clone()).await, &jti));
    assert!(dropped_events(&app).await.is_empty());

    // An event refused every time: delivered again until it has been refused five times (the
    // default bound), then dropped and audited.
    app.set_disabled("test", "alice", true).await;
    let (jti, set) = only_set(&poll(&app, &secret, now.clone()).await);
    for refused in 1..=5 {
        let answer = poll(&app, &secret, refusal(&jti, "invalid_key")).await;
        assert!(
            !delivered(&answer, &jti),
            "refusal {refused}: after a pause"
        );
        app.clock.advance(PAST_ANY_PAUSE);
        let next = poll(&app, &secret, now.clone()).await;
        if refused < 5 {
            assert!(
                delivered(&next, &jti),
                "refused {refused} time(s): delivered again"
            );
        } else {
            assert!(!delivered(&next, &jti), "given up after 5 refusals");
        }
    }
    let dropped = dropped_events(&app).await;
    assert_eq!(dropped.len(), 1, "{dropped:?}");
    let d = &dropped[0].details;
    assert_eq!(d["jti"], jti.as_str());
    assert_eq!(d["err"], "invalid_key");
    assert_eq!(d["receiver"], RX);
    assert_eq!(d["refusals"], 5);
    let text = d.to_string();
    assert!(
        !text.contains(&set) && !text.contains("eyJ"),
        "never the SET itself: {text}"
    );
}

/// A second `authz` on the same database, data dir and clock (its own key ring, caches and
/// listener), served until the guard is dropped.
struct Replica {
    url: String,
    state: AppState,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn replica(app: &TestApp) -> Replica {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let config = (*app.state.config).clone();
    let state = authz::build_state(config, app.clock.clone()).await.unwrap();
    let s = state.clone();
    let task = tokio::spawn(async move {
        authz::serve(s, listener, std::future::pending())
            .await
            .unwrap();
    });
    Replica { url, state, task }
}

/// The real `authz` binary against the app's database and data dir.
fn cli(app: &TestApp, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_authz"))
        .args(args)
        .env("AUTHZ_DATA_DIR", app.dir.path())
        .env("DATABASE_URL", &app.database_url)
        .env("AUTHZ_ISSUER", &app.base)
        .env("AUTHZ_DEFAULT_RESOURCE", MCP)
        .output()
        .unwrap()
}

fn kid(jwt: &str) -> String {
    jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap()
}

async fn jwks_kids(http: &reqwest::Client, base: &str) -> Vec<String> {
    let set: jsonwebtoken::jwk::JwkSet = http
        .get(format!("{base}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    set.keys
        .into_iter()
        .filter_map(|k| k.common.key_id)
        .collect()
}

/// Wait (bounded) until `base` no longer publishes `kid`.
async fn unpublished_at(http: &reqwest::Client, base: &str, kid: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while jwks_kids(http, base).await.iter().any(|k| k == kid) {
        assert!(Instant::now() < deadline, "{what} still publishes {kid}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Alice's tokens through the public browser client "rp" (the real sign-in pages, with
/// `openid` for userinfo and a refresh token): (access token, refresh token).
async fn alice_tokens(app: &TestApp) -> (String, String) {
    let (verifier, challenge) = crate::support::pkce();
    let url = app.authorize_url(
        "rp",
        &challenge,
        &[
            ("scope", "openid notes:read offline_access"),
            ("resource", MCP),
        ],
    );
    let q = app
        .browser_sign_in(&FormAgent::new(), &url, "alice", PW)
        .await;
    let body = expect_token(app.redeem("rp", &q["code"], &verifier).await).await;
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
    )
}

async fn userinfo_status_at(http: &reqwest::Client, base: &str, token: &str) -> u16 {
    http.get(format!("{base}/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn item_17_keys_revoke_unpublishes_the_key_on_every_replica_and_authz_refuses_its_tokens(
    backend: Backend,
) {
    // The CLI is another process. PostgreSQL tells every running server at once (NOTIFY; the
    // key-reload timer is an hour here); SQLite has nobody to tell, running servers see the
    // change at their next key reload (every second here).
    let app = TestApp::spawn_with(backend, |c| {
        if backend == Backend::Sqlite {
            c.key_reload_secs = 1;
        }
    })
    .await;
    let second = replica(&app).await;
    app.user("alice", PW, "user").await;
    app.code_client("rp", AuthMethod::None, "openid notes:read offline_access")
        .await;
    let rs = app.exchange_client("notes:read").await;
    let (token, refresh_token) = alice_tokens(&app).await;
    let old_kid = kid(&token);
    // Before: the token works at authz and on the replica (positive control).
    assert_eq!(app.userinfo_status(&token).await, 200);
    assert_eq!(
        userinfo_status_at(&app.http, &second.url, &token).await,
        200
    );
    assert_eq!(app.introspect(&rs, &token).await["active"], true);
    assert!(jwks_kids(&app.http, &second.url).await.contains(&old_kid));

    // An unknown key is refused, and nothing changes.
    let out = cli(&app, &["keys", "revoke", "no-such-kid", "--json"]);
    assert!(!out.status.success(), "an unknown kid is an error");

    // The compromised key is the active one: withdrawing it makes a new key sign at once.
    let out = cli(&app, &["keys", "revoke", &old_kid, "--json"]);
    assert!(
        out.status.success(),
        "authz keys revoke: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["kid"], old_kid.as_str(), "{report}");
    assert_eq!(report["status"], "withdrawn", "{report}");
    let new_kid = report["replaced_by"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, old_kid);

    // Unpublished by this server and by the replica, each told by the database.
    unpublished_at(&app.http, &app.base, &old_kid, "the server").await;
    unpublished_at(&app.http, &second.url, &old_kid, "the replica").await;
    for base in [&app.base, &second.url] {
        let kids = jwks_kids(&app.http, base).await;
        assert!(kids.contains(&new_kid), "{base}: {kids:?}");
    }
    assert!(
        !second.state.keys.current().kids.contains(&old_kid),
        "the replica's key ring"
    );
    // Its tokens are refused by authz itself (userinfo on both, introspection) …
    assert_eq!(app.userinfo_status(&token).await, 401);
    assert_eq!(
        userinfo_status_at(&app.http, &second.url, &token).await,
        401
    );
    assert_eq!(app.introspect(&rs, &token).await["active"], false);
    // … while the refresh token, which no key signs, yields a token under the new key, which
    // works (positive control).
    let refreshed = expect_token(app.refresh("rp", &refresh_token, &[]).await).await;
    let fresh = refreshed["access_token"].as_str().unwrap();
    assert_eq!(kid(fresh), new_kid);
    assert_eq!(app.userinfo_status(fresh).await, 200);
    assert_eq!(userinfo_status_at(&app.http, &second.url, fresh).await, 200);
    assert_eq!(app.introspect(&rs, fresh).await["active"], true);

    // Listed as withdrawn; withdrawing it again is an error; audited with the CLI as actor.
    let list: Value =
        serde_json::from_slice(&cli(&app, &["keys", "list", "--json"]).stdout).unwrap();
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == old_kid.as_str())
        .unwrap();
    assert_eq!(row["status"], "withdrawn");
    assert_eq!(row["published"], false);
    let again = cli(&app, &["keys", "revoke", &old_kid]);
    assert!(!again.status.success(), "already withdrawn");
    let audited = app.audit_of("key.withdrawn").await;
    assert_eq!(audited.len(), 1, "{audited:?}");
    assert_eq!(audited[0].actor.as_deref(), Some("cli"));
    assert_eq!(audited[0].details["kid"], old_kid.as_str());
    assert_eq!(audited[0].details["replaced_by"], new_kid.as_str());
}

/// The withdraw form of `kid` on the keys page: its fields, "I understand" ticked.
async fn withdraw_form(app: &TestApp, agent: &FormAgent, kid: &str) -> Vec<(String, String)> {
    let page = agent.get(&app.url("/admin/keys")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let form = page
        .body
        .split("<form")
        .find(|f| {
            f.contains("action=\"/admin/keys/withdraw\"") && f.contains(&format!("value=\"{kid}\""))
        })
        .unwrap_or_else(|| panic!("no withdraw form for {kid}"));
    let mut fields = hidden_inputs(form);
    fields.push(("confirm".into(), "on".into()));
    fields
}

async fn post(app: &TestApp, agent: &FormAgent, fields: &[(String, String)]) -> Page {
    agent
        .post_form(&app.url("/admin/keys/withdraw"), fields)
        .await
}

async fn item_17_the_console_withdraws_a_key_with_csrf_and_a_recent_sign_in_audited_as_the_admin(
    backend: Backend,
) {
    let app = TestApp::spawn_with(backend, |c| c.console.reauth_secs = 30).await;
    app.user("root", PW, "admin").await;
    let first = app.state.keys.current().active.kid().to_owned();
    // An emergency rotation: the compromised key is retired but still published (its tokens
    // would verify for another ~11 minutes).
    let (second, _) = app
        .state
        .key_admin()
        .rotate_keys(
            "test",
            authz::keys::SigningAlg::Es256,
            authz::keys::KeySwitch::Now,
        )
        .await
        .unwrap();
    assert!(jwks_kids(&app.http, &app.base).await.contains(&first));
    let agent = console_agent(&app, "root", PW).await;
    let fields = withdraw_form(&app, &agent, &first).await;

    // Without the CSRF token: refused, nothing changes.
    let forged: Vec<_> = fields
        .iter()
        .filter(|(n, _)| n != "csrf")
        .cloned()
        .collect();
    let r = post(&app, &agent, &forged).await;
    assert!(r.status >= 400, "{} {}", r.status, r.body);
    assert!(jwks_kids(&app.http, &app.base).await.contains(&first));
    // A sign-in older than the console's re-authentication window: sent to sign in again.
    app.clock.advance(app.state.config.console.reauth_secs + 1);
    let r = post(&app, &agent, &fields).await;
    assert_eq!(r.status, 303);
    assert!(
        r.location.as_deref().unwrap_or("").contains("reauth=1"),
        "{:?}",
        r.location
    );
    assert!(jwks_kids(&app.http, &app.base).await.contains(&first));

    // Signed in again: withdrawn at once.
    console_sign_in(&app, &agent, "root", PW).await;
    let fields = withdraw_form(&app, &agent, &first).await;
    let r = post(&app, &agent, &fields).await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.location.as_deref(), Some("/admin/keys?done=withdrawn"));
    let kids = jwks_kids(&app.http, &app.base).await;
    assert!(!kids.contains(&first), "{kids:?}");
    assert!(kids.contains(&second), "the active key stays: {kids:?}");
    let page = agent.get(&app.url("/admin/keys?done=withdrawn")).await;
    assert!(page.body.contains("notice-ok"), "{}", page.body);
    assert!(
        page.body
            .contains(&format!("data-kid=\"{first}\" data-status=\"withdrawn\"")),
        "{}",
        page.body
    );
    let audited = app.audit_of("key.withdrawn").await;
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0].actor.as_deref(), Some("root"));
    assert_eq!(audited[0].details["kid"], first.as_str());
    assert_eq!(audited[0].details["replaced_by"], Value::Null);

    // The active key from the console: a new key is made active first (no gap in signing).
    let fields = withdraw_form(&app, &agent, &second).await;
    let r = post(&app, &agent, &fields).await;
    assert_eq!(r.status, 303, "{}", r.body);
    let active = app.state.keys.current().active.kid().to_owned();
    assert_ne!(active, second);
    let kids = jwks_kids(&app.http, &app.base).await;
    assert!(
        !kids.contains(&second) && kids.contains(&active),
        "{kids:?}"
    );
}

async fn item_17_a_queued_event_signed_by_a_withdrawn_key_is_delivered_signed_by_the_new_key(
    backend: Backend,
) {
    let (app, secret) = receiver_app(backend).await;
    app.user("alice", PW, "user").await;
    let old_kid = app.state.keys.current().active.kid().to_owned();
    // An event queued (signed by the current key), not yet fetched by its receiver …
    app.set_disabled("test", "alice", true).await;
    // … when that key is withdrawn.
    let w = app
        .state
        .key_admin()
        .withdraw_key("test", &old_kid)
        .await
        .unwrap();
    let new_kid = w.replaced_by.unwrap();
    let (jti, set) = only_set(&poll(&app, &secret, json!({ "returnImmediately": true })).await);
    // Delivered signed by a key the receiver can fetch, the same event.
    assert_eq!(kid(&set), new_kid);
    let kids = jwks_kids(&app.http, &app.base).await;
    assert!(kids.contains(&new_kid) && !kids.contains(&old_kid));
    let claims = crate::support::jwt_claims(&set);
    assert_eq!(claims["jti"], jti.as_str());
    assert!(
        claims["events"]
            .get("https://schemas.openid.net/secevent/risc/event-type/account-disabled")
            .is_some(),
        "{claims}"
    );
}
