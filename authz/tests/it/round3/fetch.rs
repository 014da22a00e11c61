//! Issue 24 items 13 and 16: remote fetches an anonymous caller must not be able to starve or
//! steer. A local https host (`testkit::https::HttpsHost`, allow-listed past the SSRF guard)
//! serves metadata documents, an ID-JAG issuer's JWK Set and a `private_key_jwt` client's
//! `jwks_uri`, and counts every request it gets; several client addresses are simulated
//! through `X-Forwarded-For` from a trusted proxy (`AUTHZ_TRUSTED_PROXIES`).

use authz::clock::Clock;
use authz::store::{AuthMethod, ClientSettings, GrantType};
use serde_json::{Value, json};
use testkit::both_backends;
use testkit::https::Route;

use crate::idp::{TestIdp, agent_client, jwt_bearer, publish_key, sign};
use crate::support::{Backend, MCP, TestApp, expect_error, expect_token, pkce};

both_backends!(
    item_13_a_cimd_flood_does_not_starve_id_jag_or_private_key_jwt_key_sets,
    item_13_trusted_key_sets_are_served_stale_while_their_host_is_down,
    item_13_a_url_client_id_at_ssf_and_resource_events_is_never_fetched,
    item_13_an_ssf_and_resource_events_flood_gets_429_with_retry_after,
    item_13_one_address_exhausting_its_cimd_budget_does_not_stop_another,
    item_16_a_trailing_dot_does_not_escape_the_cimd_deny_list,
    review_5_f2_a_registered_client_cannot_spend_a_trusted_key_sets_refetch,
    review_5b_f1_a_bogus_kid_delays_a_trusted_rotation_by_seconds_at_most,
);

const IDP: &str = "https://idp.round3.example";
const AGENT: &str = "agent";
const SVC: &str = "svc";
const RECEIVER: &str = "receiver";
const IDP_JWKS: &str = "/idp/jwks.json";
const SVC_JWKS: &str = "/svc/jwks.json";

/// The app, the IdP (its https host also serves `svc`'s keys), `svc`'s key and set, secrets.
struct Fixture {
    app: TestApp,
    idp: TestIdp,
    svc_pem: Vec<u8>,
    svc_jwks: Value,
    agent_secret: String,
}

async fn fixture(backend: Backend, tweak: impl FnOnce(&mut authz::config::Config)) -> Fixture {
    let idp = TestIdp::start(IDP_JWKS, "idp-1").await;
    let (svc_pem, svc_jwks) = publish_key(&idp.host, SVC_JWKS, "svc-1");
    let jwks_uri = idp.jwks_uri();
    let app = TestApp::spawn_with(backend, |c| {
        idp.trust(c);
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        // Deserialized, as from the TOML file: fields added later keep their defaults.
        c.id_jag.issuers = vec![
            serde_json::from_value(json!({
                "issuer": IDP, "jwks_uri": jwks_uri, "allowed_clients": [AGENT],
                "subject_claim": "sub", "subjects": { "U-42": "alice" },
            }))
            .unwrap(),
        ];
        tweak(c);
    })
    .await;
    app.user("alice", "correct horse battery staple", "user")
        .await;
    let agent_secret = agent_client(&app, AGENT).await;
    // An administrator's private_key_jwt client whose keys are at a jwks_uri.
    authz::identity::admin::add_client(
        app.state.client_services(),
        "test",
        Some(SVC.into()),
        ClientSettings {
            name: "Signed service".into(),
            auth_method: AuthMethod::PrivateKeyJwt,
            grant_types: vec![GrantType::ClientCredentials],
            scopes: shared::ScopeSet::parse("notes:read").unwrap(),
            resources: vec![MCP.into()],
            jwks_uri: Some(idp.host.url(SVC_JWKS)),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    Fixture {
        app,
        idp,
        svc_pem,
        svc_jwks,
        agent_secret,
    }
}

impl Fixture {
    /// The jwt-bearer grant with a fresh ID-JAG for alice (`jti`), as the agent.
    async fn id_jag_grant(&self, jti: &str) -> reqwest::Response {
        let now = self.app.clock.now();
        let claims = json!({
            "iss": IDP, "sub": "U-42", "aud": self.app.base, "client_id": AGENT, "jti": jti,
            "iat": now, "exp": now + 120, "resource": MCP, "scope": "notes:read",
        });
        let jag = self.idp.mint(&claims);
        jwt_bearer(&self.app, (AGENT, &self.agent_secret), &jag, &[]).await
    }

    /// `client_credentials` for `svc`, authenticated with a fresh client assertion (`jti`).
    async fn private_key_jwt_grant(&self, jti: &str) -> reqwest::Response {
        self.private_key_jwt_grant_with(&self.svc_pem, "svc-1", jti)
            .await
    }

    /// The same, signed with `pem` under `kid`.
    async fn private_key_jwt_grant_with(
        &self,
        pem: &[u8],
        kid: &str,
        jti: &str,
    ) -> reqwest::Response {
        let now = self.app.clock.now();
        let claims = json!({ "iss": SVC, "sub": SVC, "aud": self.app.base, "exp": now + 60,
                             "iat": now, "jti": jti });
        let assertion = sign(pem, None, kid, &claims);
        self.app
            .token(
                &[
                    ("grant_type", "client_credentials"),
                    (
                        "client_assertion_type",
                        authz::clients::assertion::ASSERTION_TYPE,
                    ),
                    ("client_assertion", &assertion),
                ],
                None,
            )
            .await
    }

    /// Both grants that need a remote key set succeed.
    async fn both_grants_work(&self, tag: &str) {
        let t = expect_token(self.id_jag_grant(&format!("jag-{tag}")).await).await;
        let at = self
            .app
            .verify(t["access_token"].as_str().unwrap(), MCP)
            .await;
        assert_eq!(at.client_id, AGENT);
        let t = expect_token(self.private_key_jwt_grant(&format!("pkj-{tag}")).await).await;
        let at = self
            .app
            .verify(t["access_token"].as_str().unwrap(), MCP)
            .await;
        assert_eq!(at.client_id, SVC);
    }
}

/// `GET /authorize` for the metadata-document client `url`, from `ip` (through the trusted
/// proxy): the status and the page.
async fn authorize_from(app: &TestApp, ip: &str, url: &str) -> (u16, String) {
    let (_, challenge) = pkce();
    let resp = app
        .http
        .get(app.authorize_url(
            url,
            &challenge,
            &[("scope", "notes:read"), ("resource", MCP)],
        ))
        .header("x-forwarded-for", ip)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

fn is_login_page(page: &(u16, String)) -> bool {
    page.0 == 200 && page.1.contains("action=\"/login\"")
}

/// A valid public metadata document for `url`.
fn document(url: &str) -> Value {
    json!({
        "client_id": url, "client_name": "Round 3 App",
        "redirect_uris": [crate::support::CB], "token_endpoint_auth_method": "none",
    })
}

async fn item_13_a_cimd_flood_does_not_starve_id_jag_or_private_key_jwt_key_sets(backend: Backend) {
    let f = fixture(backend, |c| c.cimd.fetches_per_host_per_minute = 5).await;
    let (app, host) = (&f.app, &f.idp.host);
    // An anonymous flood of metadata-document URLs on the host that also serves the keys.
    for i in 0..8 {
        let page =
            authorize_from(app, "198.51.100.1", &host.url(&format!("/flood/{i}.json"))).await;
        assert_eq!(page.0, 400, "{}", page.1);
    }
    // Control: the metadata fetcher's budget for that host is really spent.
    let page = authorize_from(app, "198.51.100.2", &host.url("/flood/x.json")).await;
    assert!(page.1.contains("too many metadata fetches"), "{}", page.1);
    // The trusted key sets are fetched on their own path: both grants work.
    f.both_grants_work("flood").await;
    assert_eq!(host.hits(IDP_JWKS), 1);
    assert_eq!(host.hits(SVC_JWKS), 1);
}

async fn item_13_trusted_key_sets_are_served_stale_while_their_host_is_down(backend: Backend) {
    let f = fixture(backend, |c| c.cimd.key_set_max_stale_secs = 3600).await;
    let (app, host) = (&f.app, &f.idp.host);
    f.both_grants_work("first").await;
    // The key host goes down after the first fetch.
    let mut down = Route::json(&json!({}));
    down.status = 503;
    host.put(IDP_JWKS, down.clone());
    host.put(SVC_JWKS, down.clone());
    // Past the cache's freshness (at most 300 s): the stored sets are used.
    app.clock.advance(301);
    f.both_grants_work("stale").await;
    app.clock.advance(600);
    f.both_grants_work("stale-later").await;
    // Past the staleness bound, with the host still down: refused (nothing is trusted forever).
    app.clock.advance(3600);
    let msg = expect_error(f.id_jag_grant("jag-too-old").await, 400, "invalid_grant").await;
    assert!(msg.contains("could not be fetched"), "{msg}");
    expect_error(
        f.private_key_jwt_grant("pkj-too-old").await,
        401,
        "invalid_client",
    )
    .await;
    let why = app.last_client_auth_failure().await;
    assert!(why.contains("could not be fetched"), "{why}");
    // The host is back: fetched again, both grants work.
    host.put(IDP_JWKS, Route::json(&f.idp.jwks));
    host.put(SVC_JWKS, Route::json(&f.svc_jwks));
    app.clock.advance(61);
    f.both_grants_work("back").await;
    // The client rotates its key: a fresh cached set lacks the new kid, which refetches it
    // (bounded: once a minute per set).
    let (svc2_pem, _) = publish_key(host, SVC_JWKS, "svc-2");
    let t = f
        .private_key_jwt_grant_with(&svc2_pem, "svc-2", "pkj-rotated")
        .await;
    expect_token(t).await;
    let hits = host.hits(SVC_JWKS);
    let t = f
        .private_key_jwt_grant_with(&svc2_pem, "svc-9", "pkj-bogus-kid")
        .await;
    expect_error(t, 401, "invalid_client").await;
    assert_eq!(
        host.hits(SVC_JWKS),
        hits,
        "unknown-kid refetches are rate-limited"
    );
}

async fn item_13_a_url_client_id_at_ssf_and_resource_events_is_never_fetched(backend: Backend) {
    let f = fixture(backend, |c| c.ssf.receivers = vec![RECEIVER.into()]).await;
    let (app, host) = (&f.app, &f.idp.host);
    let url = host.url("/receiver.json");
    host.put("/receiver.json", Route::json(&document(&url)));
    // RFC 6749 §2.3.1: the Basic user name is the form-urlencoded client id.
    let encoded: String = form_urlencoded::byte_serialize(url.as_bytes()).collect();
    let poll = |id: String, secret: String| async move {
        app.http
            .post(app.url("/ssf/poll"))
            .basic_auth(id, Some(secret))
            .json(&json!({ "returnImmediately": true }))
            .send()
            .await
            .unwrap()
    };
    let stream = |id: String, secret: String| async move {
        app.http
            .get(app.url("/ssf/stream"))
            .basic_auth(id, Some(secret))
            .send()
            .await
            .unwrap()
    };
    let report = |id: String, secret: String| async move {
        app.http
            .post(app.url("/resource-events"))
            .basic_auth(id, Some(secret))
            .json(&json!({ "events": [{ "ts": 1, "action": "tool:x" }] }))
            .send()
            .await
            .unwrap()
    };
    // A metadata-document URL as the client id: invalid_client, and nothing fetched.
    expect_error(
        poll(encoded.clone(), "x".into()).await,
        401,
        "invalid_client",
    )
    .await;
    expect_error(
        stream(encoded.clone(), "x".into()).await,
        401,
        "invalid_client",
    )
    .await;
    expect_error(
        report(encoded.clone(), "x".into()).await,
        401,
        "invalid_client",
    )
    .await;
    assert_eq!(
        host.hits("/receiver.json"),
        0,
        "a client-named URL was fetched"
    );

    // Controls: the registered receiver and resource server are answered…
    let secret = app.service_client(RECEIVER, "notes:read").await;
    let r = poll(RECEIVER.into(), secret.clone()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(stream(RECEIVER.into(), secret).await.status(), 200);
    let rs_secret = app.exchange_client("profile:read").await;
    assert_eq!(report("rs".into(), rs_secret).await.status(), 200);
    // …and the same URL is fetched where metadata-document clients belong.
    let page = authorize_from(app, "198.51.100.9", &url).await;
    assert!(is_login_page(&page), "{page:?}");
    assert_eq!(host.hits("/receiver.json"), 1);
}

async fn item_13_an_ssf_and_resource_events_flood_gets_429_with_retry_after(backend: Backend) {
    let f = fixture(backend, |c| {
        c.ssf.receivers = vec![RECEIVER.into()];
        c.rate_limits.ssf = 3;
        c.rate_limits.resource_events = 3;
    })
    .await;
    let app = &f.app;
    let secret = app.service_client(RECEIVER, "notes:read").await;
    let rs_secret = app.exchange_client("profile:read").await;
    let poll = |ip: &'static str, auth: bool| {
        let secret = secret.clone();
        async move {
            let mut req = app
                .http
                .post(app.url("/ssf/poll"))
                .header("x-forwarded-for", ip)
                .json(&json!({ "returnImmediately": true }));
            if auth {
                req = req.basic_auth(RECEIVER, Some(secret));
            }
            req.send().await.unwrap()
        }
    };
    let report = |ip: &'static str, auth: bool| {
        let rs_secret = rs_secret.clone();
        async move {
            let mut req = app
                .http
                .post(app.url("/resource-events"))
                .header("x-forwarded-for", ip)
                .json(&json!({ "events": [] }));
            if auth {
                req = req.basic_auth("rs", Some(rs_secret));
            }
            req.send().await.unwrap()
        }
    };
    // Control: the receiver polls.
    assert_eq!(poll("198.51.100.1", true).await.status(), 200);
    // An anonymous flood from one address: 401s, then 429 with Retry-After, even for the
    // receiver's own credentials from that address.
    for _ in 0..2 {
        expect_error(poll("198.51.100.1", false).await, 401, "invalid_client").await;
    }
    let r = poll("198.51.100.1", true).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    expect_error(r, 429, "temporarily_unavailable").await;
    // /ssf/stream shares the budget.
    let r = app
        .http
        .get(app.url("/ssf/stream"))
        .header("x-forwarded-for", "198.51.100.1")
        .basic_auth(RECEIVER, Some(&secret))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    // Another address is not affected.
    assert_eq!(poll("198.51.100.2", true).await.status(), 200);

    // The same at /resource-events.
    assert_eq!(report("198.51.100.3", true).await.status(), 200);
    for _ in 0..2 {
        expect_error(report("198.51.100.3", false).await, 401, "invalid_client").await;
    }
    let r = report("198.51.100.3", true).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    assert_eq!(report("198.51.100.4", true).await.status(), 200);
    // The next minute has a new budget.
    app.clock.advance(61);
    assert_eq!(poll("198.51.100.1", true).await.status(), 200);
    assert_eq!(report("198.51.100.3", true).await.status(), 200);
}

async fn item_13_one_address_exhausting_its_cimd_budget_does_not_stop_another(backend: Backend) {
    let f = fixture(backend, |c| {
        c.cimd.fetches_per_host_per_minute = 5;
        c.cimd.fetches_per_ip_per_minute = 2;
    })
    .await;
    let (app, host) = (&f.app, &f.idp.host);
    // One address tries six new URLs on the host: two are fetched, the rest refused.
    let mut last = (0, String::new());
    for i in 0..6 {
        last = authorize_from(app, "203.0.113.7", &host.url(&format!("/mine/{i}.json"))).await;
        assert_eq!(last.0, 400, "{}", last.1);
    }
    let hits: usize = (0..6).map(|i| host.hits(&format!("/mine/{i}.json"))).sum();
    assert_eq!(hits, 2, "the per-address budget did not hold");
    assert!(last.1.contains("too many metadata fetches"), "{}", last.1);
    // Over its budget, it names another client's document: refused for it alone (a budget's
    // refusal is not remembered as the document's failure)…
    let url = host.url("/theirs.json");
    host.put("/theirs.json", Route::json(&document(&url)));
    let page = authorize_from(app, "203.0.113.7", &url).await;
    assert!(page.1.contains("too many metadata fetches"), "{}", page.1);
    assert_eq!(host.hits("/theirs.json"), 0);
    // …another address (an IPv6 one) signs in with it.
    let page = authorize_from(app, "2001:db8::1", &url).await;
    assert!(is_login_page(&page), "{page:?}");
    // The first address has a new budget the next minute.
    app.clock.advance(61);
    let ok = host.url("/mine/ok.json");
    host.put("/mine/ok.json", Route::json(&document(&ok)));
    let page = authorize_from(app, "203.0.113.7", &ok).await;
    assert!(is_login_page(&page), "{page:?}");
}

async fn item_16_a_trailing_dot_does_not_escape_the_cimd_deny_list(backend: Backend) {
    let f = fixture(backend, |c| {
        c.cimd.denied_hosts = vec!["evil.test".into(), "*.evil.test".into()];
    })
    .await;
    let (app, host) = (&f.app, &f.idp.host);
    for url in [
        "https://EVIL.test./client.json",
        "https://evil.test./client.json",
        "https://app.Evil.Test./client.json",
    ] {
        let page = authorize_from(app, "198.51.100.1", url).await;
        assert_eq!(page.0, 400, "{url}: {}", page.1);
        assert!(
            page.1.contains("not accepted by this server"),
            "{url}: {}",
            page.1
        );
    }
    // Two trailing dots are no host name at all.
    let page = authorize_from(app, "198.51.100.1", "https://evil.test../client.json").await;
    assert_eq!(page.0, 400, "{}", page.1);
    let events = app.audit_events().await;
    let hosts: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "client.metadata_rejected")
        .map(|e| e.details["host"].clone())
        .collect();
    assert!(hosts.contains(&json!("evil.test")), "{hosts:?}");
    assert!(hosts.contains(&json!("app.evil.test")), "{hosts:?}");
    // Control: a host that is not denied is fetched and signs in.
    let url = host.url("/client.json");
    host.put("/client.json", Route::json(&document(&url)));
    let page = authorize_from(app, "198.51.100.1", &url).await;
    assert!(is_login_page(&page), "{page:?}");
}

/// Review 5 F2: the "an unknown `kid` refetches once a minute per URL" record was shared by the
/// trusted key sets and the ones self-described clients name. An anonymous caller registered a
/// client (`/register`) naming `svc`'s `jwks_uri`, sent an assertion with a bogus `kid`, and so
/// spent the refetch `svc` needed when it rotated its key a moment later: its new key was
/// refused for up to five minutes. Each cache has its own record now.
async fn review_5_f2_a_registered_client_cannot_spend_a_trusted_key_sets_refetch(backend: Backend) {
    let f = fixture(backend, |_| {}).await;
    let (app, host) = (&f.app, &f.idp.host);
    f.both_grants_work("first").await; // svc's set is in the trusted cache
    // The attacker's client, naming svc's key-set URL.
    let reg = app
        .http
        .post(app.url("/register"))
        .json(&json!({
            "redirect_uris": [crate::support::CB],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": host.url(SVC_JWKS),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(reg.status(), 201, "registered");
    let attacker = reg.json::<Value>().await.unwrap()["client_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let now = app.clock.now();
    let bogus = json!({ "iss": attacker, "sub": attacker, "aud": app.base, "exp": now + 60,
                        "iat": now, "jti": "bogus" });
    let (attacker_pem, _) = testkit::https::es256_key("bogus");
    let spent = app
        .token(
            &[
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    authz::clients::assertion::ASSERTION_TYPE,
                ),
                (
                    "client_assertion",
                    &sign(&attacker_pem, None, "bogus", &bogus),
                ),
            ],
            None,
        )
        .await;
    expect_error(spent, 401, "invalid_client").await;
    let hits = host.hits(SVC_JWKS);
    // svc rotates its key now; its first assertion with the new kid gets a token (the
    // trusted cache refetches once for the unknown kid).
    let (new_pem, _) = publish_key(host, SVC_JWKS, "svc-2");
    let t = expect_token(
        f.private_key_jwt_grant_with(&new_pem, "svc-2", "pkj-new")
            .await,
    )
    .await;
    assert!(t["access_token"].is_string());
    assert_eq!(
        host.hits(SVC_JWKS),
        hits + 1,
        "one refetch, for the trusted cache"
    );
}

/// Review 5 (second round) F1: anyone who knows a trusted client's id (it is no secret) can
/// send an assertion for it with a bogus `kid` just before the client's first one with its
/// new key, spending the trusted set's refetch for an unknown `kid`. That refetch comes back
/// within `TRUSTED_REFETCH_EVERY_SECS` (5 s; it was 60 s), so a rotation is delayed by seconds
/// at most.
async fn review_5b_f1_a_bogus_kid_delays_a_trusted_rotation_by_seconds_at_most(backend: Backend) {
    let f = fixture(backend, |_| {}).await;
    let (app, host) = (&f.app, &f.idp.host);
    f.both_grants_work("first").await;
    app.clock.advance(61); // no refetch spent yet
    let (stranger, _) = testkit::https::es256_key("bogus");
    expect_error(
        f.private_key_jwt_grant_with(&stranger, "bogus", "spend")
            .await,
        401,
        "invalid_client",
    )
    .await;
    let (new_pem, _) = publish_key(host, SVC_JWKS, "svc-2");
    // Inside the window the new key is not known yet (the bound, not a goal) ...
    expect_error(
        f.private_key_jwt_grant_with(&new_pem, "svc-2", "too-soon")
            .await,
        401,
        "invalid_client",
    )
    .await;
    // ... and five seconds later it is.
    app.clock.advance(5);
    expect_token(
        f.private_key_jwt_grant_with(&new_pem, "svc-2", "in-time")
            .await,
    )
    .await;
}
