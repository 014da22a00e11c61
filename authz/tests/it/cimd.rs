//! Client ID Metadata Documents: a local https metadata host (its certificate made for the
//! test, trusted through `cimd.extra_roots`, `127.0.0.1:<port>` allow-listed) serves the
//! documents; the sign-in runs end to end, and each refusal of the guarded fetch and of the
//! validation has its test, beside the cache and budget behaviour.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::agent::FormAgent;
use testkit::both_backends;
use testkit::https::{HttpsHost, Route};

use crate::support::{Backend, CB, MCP, TestApp, expect_error, expect_token, pkce, query};

both_backends!(
    a_metadata_document_client_signs_in_end_to_end,
    http_urls_are_refused,
    redirects_are_not_followed,
    oversized_documents_are_refused,
    slow_hosts_time_out,
    non_json_documents_are_refused,
    a_client_id_mismatch_is_refused,
    documents_without_redirect_uris_are_refused,
    a_redirect_uri_the_document_does_not_list_is_refused,
    private_addresses_need_the_allow_list,
    secrets_in_documents_are_refused,
    caching_follows_max_age_within_the_clamp,
    failures_are_remembered_briefly,
    a_flood_of_urls_on_one_host_makes_bounded_fetches,
    the_trust_policy_denies_allows_and_verifies_hosts,
    the_cli_lists_and_refreshes_document_clients,
);

pub(crate) const ALICE: (&str, &str) = ("alice", "correct horse battery staple");

pub(crate) async fn setup(
    backend: Backend,
    tweak: impl FnOnce(&mut authz::config::Config),
) -> (TestApp, HttpsHost) {
    let host = HttpsHost::start().await;
    let (roots, allowed) = (host.ca_pem.clone(), host.host_port());
    let app = TestApp::spawn_with(backend, |c| {
        c.cimd.extra_roots = Some(roots);
        c.cimd.allowed_private_hosts = vec![allowed];
        c.cimd.timeout_secs = 1;
        tweak(c);
    })
    .await;
    app.user(ALICE.0, ALICE.1, "user").await;
    (app, host)
}

/// A valid document for `url` (with members we ignore, as real documents have).
pub(crate) fn document(url: &str) -> Value {
    json!({
        "client_id": url,
        "client_name": "Metadata App",
        "client_uri": "https://app.example/",
        "logo_uri": "https://app.example/logo.png",
        "redirect_uris": [CB],
        "grant_types": ["authorization_code", "refresh_token",
                        "urn:ietf:params:oauth:grant-type:jwt-bearer"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    })
}

/// `/authorize` for the document client `url`; the page (or redirect) it answers.
async fn authorize(app: &TestApp, agent: &FormAgent, url: &str) -> testkit::agent::Page {
    let (_, challenge) = pkce();
    agent
        .get(&app.authorize_url(
            url,
            &challenge,
            &[("scope", "notes:read"), ("resource", MCP)],
        ))
        .await
}

/// Alice signs in at `auth` through the pages: the consent page.
pub(crate) async fn consent_page(
    app: &TestApp,
    agent: &FormAgent,
    auth: &str,
) -> testkit::agent::Page {
    let login = agent.get(auth).await;
    assert!(
        login.body.contains("action=\"/login\""),
        "{} {:?} {}",
        login.status,
        login.location,
        login.body
    );
    let mut fields = testkit::agent::hidden_inputs(&login.body);
    fields.push(("username".into(), ALICE.0.into()));
    fields.push(("password".into(), ALICE.1.into()));
    let next = agent.post_form(&app.url("/login"), &fields).await;
    let consent = agent.get(&app.url(next.location.as_deref().unwrap())).await;
    assert!(
        consent.body.contains("action=\"/consent\""),
        "{}",
        consent.body
    );
    consent
}

/// The document at `path` is refused: an error page (never a redirect) naming `reason`, and
/// the refusal audited with its host.
pub(crate) async fn refused(app: &TestApp, url: &str, reason: &str) {
    let page = authorize(app, &FormAgent::new(), url).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.location.is_none(), "redirected to {:?}", page.location);
    assert!(
        page.body.contains(reason),
        "{reason:?} not in {}",
        page.body
    );
    let events = app.audit_events().await;
    let ev = events
        .iter()
        .find(|e| e.kind == "client.metadata_rejected")
        .expect("the refusal is audited");
    assert_eq!(ev.client_id.as_deref(), Some(url));
    // At the token endpoint the same client is invalid_client.
    let resp = app
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("client_id", url),
                ("code", "x"),
            ],
            None,
        )
        .await;
    expect_error(resp, 401, "invalid_client").await;
}

async fn a_metadata_document_client_signs_in_end_to_end(backend: Backend) {
    let (app, host) = setup(backend, |_| {}).await;
    let url = host.url("/oauth/client.json");
    host.put("/oauth/client.json", Route::json(&document(&url)));
    let meta: Value = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(meta["client_id_metadata_document_supported"], true);

    let agent = FormAgent::new();
    let (verifier, challenge) = pkce();
    let auth = app.authorize_url(
        &url,
        &challenge,
        &[("scope", "openid notes:read"), ("resource", MCP)],
    );
    let consent = consent_page(&app, &agent, &auth).await;
    assert!(consent.body.contains("Metadata App"));
    assert!(
        consent
            .body
            .contains("published at <strong>127.0.0.1</strong>"),
        "{}",
        consent.body
    );
    assert!(consent.body.contains("Unverified application"));
    assert!(consent.body.contains("runs on your own computer"));
    let mut fields = testkit::agent::hidden_inputs(&consent.body);
    fields.push(("decision".into(), "approve".into()));
    let back = agent.post_form(&app.url("/consent"), &fields).await;
    let q = query(back.location.as_deref().unwrap());
    let tokens = expect_token(app.redeem(&url, &q["code"], &verifier).await).await;
    let claims = app
        .verify(tokens["access_token"].as_str().unwrap(), MCP)
        .await;
    assert_eq!(claims.client_id, url);
    assert!(tokens["refresh_token"].is_string());
    // One fetch served it all; the client is stored like any other, marked as a document.
    assert_eq!(host.hits("/oauth/client.json"), 1);
    let client = app.state.store.get_client(&url).await.unwrap().unwrap();
    assert_eq!(
        client.registration,
        authz::store::Registration::MetadataDocument
    );
    assert!(client.metadata_fetched_at.is_some());
    // Refresh works (token endpoint resolves through the stored document).
    expect_token(
        app.refresh(&url, tokens["refresh_token"].as_str().unwrap(), &[])
            .await,
    )
    .await;
}

async fn http_urls_are_refused(backend: Backend) {
    let (app, host) = setup(backend, |_| {}).await;
    let url = format!("http://127.0.0.1:{}/client.json", host.port);
    refused(&app, &url, "must use https").await;
}

async fn redirects_are_not_followed(backend: Backend) {
    let (app, host) = setup(backend, |_| {}).await;
    let target = host.url("/real.json");
    host.put(
        "/real.json",
        Route::json(&document(&host.url("/moved.json"))),
    );
    let mut moved = Route::json(&json!({}));
    moved.status = 302;
    host.put("/moved.json", moved.header("location", &target));
    refused(&app, &host.url("/moved.json"), "redirects are not followed").await;
    assert_eq!(host.hits("/real.json"), 0, "the redirect was followed");
}

async fn oversized_documents_are_refused(backend: Backend) {
    let (app, host) = setup(backend, |_| {}).await;
    let url = host.url("/big.json");
    let mut doc = document(&url);
    doc["padding"] = json!("x".repeat(20 * 1024));
    host.put("/big.json", Route::json(&doc));
    refused(&app, &url, "larger than 16384 bytes").await;
    // Control: the same document without padding is accepted.
    let ok = host.url("/small.json");
    host.put("/small.json", Route::json(&document(&ok)));
    let page = authorize(&app, &FormAgent::new(), &ok).await;
    assert!(page.body.contains("action=\"/login\""), "{}", page.body);
}

async fn slow_hosts_time_out(backend: Backend) {
    let (app, host) = setup(backend, |_| {}).await;
    let url = host.url("/slow.json");
    let mut slow = Route::json(&document(&url));
    slow.delay = Duration::from_secs(3);
    host.put("/slow.json", slow);
    let started = std::time::Instant::now();
    refused(&app, &url, "did not answer in time").await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "waited for the slow host"
    );
}

async fn non_json_documents_are_refused(backend: Backend) {
    let (app, host) = setup(backend, |_| {}).await;
    let url = host.url("/page.html");
    let mut html = Route::json(&document(&url));
    html.headers = vec![("content-type".into(), "text/html".into())];
    host.put("/page.html", html);
    refused(&app, &url, "not application/json").await;
    let broken = host.url("/broken.json");
    let mut r = Route::json(&json!({}));
    r.body = b"{\"client_id\": ".to_vec();
    host.put("/broken.json", r);
    refused(&app, &broken, "not valid JSON").await;
}

async fn a_client_id_mismatch_is_refused(backend: Backend) {
    let (app, host) = setup(backend, |_| {}).await;
    let url = host.url("/a.json");
    host.put(
        "/a.json",
        Route::json(&document("https://other.example/a.json")),
    );
    refused(&app, &url, "not the URL it was fetched from").await;
}

async fn documents_without_redirect_uris_are_refused(backend: Backend) {
    let (app, host) = setup(backend, |_| {}).await;
    let url = host.url("/noredirect.json");
    let mut doc = document(&url);
    doc.as_object_mut().unwrap().remove("redirect_uris");
    host.put("/noredirect.json", Route::json(&doc));
    refused(&app, &url, "no redirect_uris").await;
    let unsafe_uri = host.url("/fragment.json");
    let mut doc = document(&unsafe_uri);
    doc["redirect_uris"] = json!(["https://app.example/cb#frag"]);
    host.put("/fragment.json", Route::json(&doc));
    refused(&app, &unsafe_uri, "fragment").await;
}

async fn a_redirect_uri_the_document_does_not_list_is_refused(backend: Backend) {
    let (app, host) = setup(backend, |_| {}).await;
    let url = host.url("/listed.json");
    let mut doc = document(&url);
    doc["redirect_uris"] = json!(["https://app.example/cb"]);
    host.put("/listed.json", Route::json(&doc));
    // The request's redirect_uri (CB) is not in the document: a page, no redirect.
    let page = authorize(&app, &FormAgent::new(), &url).await;
    assert_eq!(page.status, 400);
    assert!(page.location.is_none());
    assert!(page.body.contains("not registered"), "{}", page.body);
}

async fn private_addresses_need_the_allow_list(backend: Backend) {
    let (app, host) = setup(backend, |_| {}).await;
    // A name that resolves to loopback, and a loopback literal, neither allow-listed.
    let by_name = format!("https://localhost:{}/client.json", host.port);
    host.put("/client.json", Route::json(&document(&by_name)));
    refused(&app, &by_name, "does not fetch from").await;
    let literal = format!("https://[::1]:{}/client.json", host.port);
    refused(&app, &literal, "does not fetch from").await;
    // A name that does not resolve at all is told in the same words (review 5, second round,
    // F4: otherwise anyone could probe which internal names exist).
    let nowhere = "https://no-such-host.invalid/client.json";
    let told = |page: &str| {
        let at = page.find("the host does not resolve").expect("the reason");
        page[at..at + 60].to_owned()
    };
    let a = authorize(&app, &FormAgent::new(), &by_name).await;
    let b = authorize(&app, &FormAgent::new(), nowhere).await;
    assert_eq!(told(&a.body), told(&b.body));
    assert_eq!(
        host.hits("/client.json"),
        0,
        "a private address was reached"
    );
    // Control: the allow-listed host:port is fetched.
    let ok = host.url("/client.json");
    host.put("/client.json", Route::json(&document(&ok)));
    let page = authorize(&app, &FormAgent::new(), &ok).await;
    assert!(page.body.contains("action=\"/login\""), "{}", page.body);
}

async fn secrets_in_documents_are_refused(backend: Backend) {
    let (app, host) = setup(backend, |_| {}).await;
    let url = host.url("/secret.json");
    let mut doc = document(&url);
    doc["client_secret"] = json!("s3cret");
    host.put("/secret.json", Route::json(&doc));
    refused(&app, &url, "must hold no secret").await;
    let basic = host.url("/basic.json");
    let mut doc = document(&basic);
    doc["token_endpoint_auth_method"] = json!("client_secret_basic");
    host.put("/basic.json", Route::json(&doc));
    refused(&app, &basic, "cannot use client_secret methods").await;
}

async fn caching_follows_max_age_within_the_clamp(backend: Backend) {
    let (app, host) = setup(backend, |_| {}).await;
    let agent = FormAgent::new();
    let fetch = |path: &'static str| {
        let (app, agent, url) = (&app, &agent, host.url(path));
        async move {
            let page = authorize(app, agent, &url).await;
            assert!(page.body.contains("action=\"/login\""), "{}", page.body);
        }
    };
    // max-age=600 is respected.
    host.put(
        "/a.json",
        Route::json(&document(&host.url("/a.json"))).header("cache-control", "max-age=600"),
    );
    fetch("/a.json").await;
    fetch("/a.json").await;
    assert_eq!(host.hits("/a.json"), 1);
    app.clock.advance(599);
    fetch("/a.json").await;
    assert_eq!(host.hits("/a.json"), 1);
    app.clock.advance(2);
    fetch("/a.json").await;
    assert_eq!(host.hits("/a.json"), 2);
    // A refetch that fails keeps the stored document within the clamp.
    let mut gone = Route::json(&json!({}));
    gone.status = 500;
    host.put("/a.json", gone);
    app.clock.advance(601);
    fetch("/a.json").await;
    assert_eq!(host.hits("/a.json"), 3);
    // max-age=10 is raised to the 300 s floor; a day-plus is cut to the 86 400 s ceiling.
    host.put(
        "/b.json",
        Route::json(&document(&host.url("/b.json"))).header("cache-control", "max-age=10"),
    );
    host.put(
        "/c.json",
        Route::json(&document(&host.url("/c.json"))).header("cache-control", "max-age=9999999"),
    );
    fetch("/b.json").await;
    fetch("/c.json").await;
    app.clock.advance(11);
    fetch("/b.json").await;
    assert_eq!(host.hits("/b.json"), 1);
    app.clock.advance(300);
    fetch("/b.json").await;
    assert_eq!(host.hits("/b.json"), 2);
    app.clock.advance(86_400);
    fetch("/c.json").await;
    assert_eq!(host.hits("/c.json"), 2);
    // The failing a.json's stored copy is past its clamp (86 400 s since its last fetch).
    let page = authorize(&app, &agent, &host.url("/a.json")).await;
    assert_eq!(page.status, 400, "a stale document outlived its clamp");
}

async fn failures_are_remembered_briefly(backend: Backend) {
    let (app, host) = setup(backend, |_| {}).await;
    let url = host.url("/down.json");
    let mut down = Route::json(&json!({}));
    down.status = 503;
    host.put("/down.json", down);
    refused(&app, &url, "answered HTTP 503").await;
    for _ in 0..5 {
        let page = authorize(&app, &FormAgent::new(), &url).await;
        assert_eq!(page.status, 400);
    }
    assert_eq!(host.hits("/down.json"), 1, "the failure was not remembered");
    app.clock.advance(61);
    host.put("/down.json", Route::json(&document(&url)));
    let page = authorize(&app, &FormAgent::new(), &url).await;
    assert!(page.body.contains("action=\"/login\""), "{}", page.body);
    assert_eq!(host.hits("/down.json"), 2);
}

async fn a_flood_of_urls_on_one_host_makes_bounded_fetches(backend: Backend) {
    let (app, host) = setup(backend, |c| c.cimd.fetches_per_host_per_minute = 5).await;
    for i in 0..40 {
        let page = authorize(
            &app,
            &FormAgent::new(),
            &host.url(&format!("/flood/{i}.json")),
        )
        .await;
        assert_eq!(page.status, 400);
    }
    let hits: usize = (0..40)
        .map(|i| host.hits(&format!("/flood/{i}.json")))
        .sum();
    assert_eq!(hits, 5, "the per-host budget did not hold");
    let page = authorize(&app, &FormAgent::new(), &host.url("/flood/x.json")).await;
    assert!(
        page.body.contains("too many metadata fetches"),
        "{}",
        page.body
    );
    // The next minute has a new budget.
    app.clock.advance(60);
    let url = host.url("/fine.json");
    host.put("/fine.json", Route::json(&document(&url)));
    let page = authorize(&app, &FormAgent::new(), &url).await;
    assert!(page.body.contains("action=\"/login\""), "{}", page.body);
}

async fn the_trust_policy_denies_allows_and_verifies_hosts(backend: Backend) {
    // A denied host names no client.
    let (app, host) = setup(backend, |c| c.cimd.denied_hosts = vec!["127.0.0.1".into()]).await;
    let url = host.url("/client.json");
    host.put("/client.json", Route::json(&document(&url)));
    refused(&app, &url, "not accepted by this server").await;
    assert_eq!(host.hits("/client.json"), 0);
    // Under allow-list, only listed hosts are accepted.
    let (app, host) = setup(backend, |c| {
        c.cimd.trust = authz::config::cimd::Trust::AllowList;
        c.cimd.allowed_hosts = vec!["*.trusted.example".into()];
    })
    .await;
    let url = host.url("/client.json");
    host.put("/client.json", Route::json(&document(&url)));
    refused(&app, &url, "not accepted by this server").await;
    // An allow-listed host is accepted and shown without the "unverified" badge.
    let (app, host) = setup(backend, |c| {
        c.cimd.trust = authz::config::cimd::Trust::AllowList;
        c.cimd.allowed_hosts = vec!["127.0.0.1".into()];
    })
    .await;
    let url = host.url("/client.json");
    host.put("/client.json", Route::json(&document(&url)));
    let (_, challenge) = pkce();
    let auth = app.authorize_url(
        &url,
        &challenge,
        &[("scope", "notes:read"), ("resource", MCP)],
    );
    let page = consent_page(&app, &FormAgent::new(), &auth).await;
    assert!(
        page.body
            .contains("published at <strong>127.0.0.1</strong>"),
        "{}",
        page.body
    );
    assert!(
        !page.body.contains("Unverified application"),
        "{}",
        page.body
    );
}

async fn the_cli_lists_and_refreshes_document_clients(backend: Backend) {
    let (app, host) = setup(backend, |_| {}).await;
    let url = host.url("/cli.json");
    host.put("/cli.json", Route::json(&document(&url)));
    let roots = host.ca_pem.to_str().unwrap().to_owned();
    let allowed = host.host_port();
    let env = [
        ("AUTHZ_CIMD_EXTRA_ROOTS", roots.as_str()),
        ("AUTHZ_CIMD_ALLOWED_PRIVATE_HOSTS", allowed.as_str()),
    ];
    let run = |args: &[&str]| crate::cli::authz_with_env(&app, &env, args, None);
    let (ok, out, err) = run(&["client", "refresh", &url, "--json"]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["registration"], "metadata_document");
    assert_eq!(v["name"], "Metadata App");
    assert_eq!(host.hits("/cli.json"), 1);
    // The document changes; a refresh fetches it now, whatever its freshness.
    let mut doc = document(&url);
    doc["client_name"] = json!("Renamed App");
    host.put("/cli.json", Route::json(&doc));
    let (ok, _, err) = run(&["client", "refresh", &url]);
    assert!(ok, "{err}");
    assert_eq!(host.hits("/cli.json"), 2);
    let (ok, out, _) = run(&["client", "list", "--json"]);
    assert!(ok);
    let list: Value = serde_json::from_str(&out).unwrap();
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["client_id"] == url.as_str())
        .unwrap();
    assert_eq!(row["name"], "Renamed App");
    assert_eq!(row["metadata_host"], "127.0.0.1");
    assert!(row["metadata_fetched_at"].is_i64());
    let (ok, out, _) = run(&["client", "list"]);
    assert!(
        ok && out.contains("metadata_document") && out.contains("metadata document at 127.0.0.1"),
        "{out}"
    );
    // A refused document, and a client id that is not a URL, are clear errors.
    host.put(
        "/cli.json",
        Route::json(&document("https://elsewhere.example/cli.json")),
    );
    let (ok, _, err) = run(&["client", "refresh", &url]);
    assert!(
        !ok && err.contains("not the URL it was fetched from"),
        "{err}"
    );
    let (ok, _, err) = run(&["client", "refresh", "mcp-cli"]);
    assert!(!ok && err.contains("not a metadata-document URL"), "{err}");
}
