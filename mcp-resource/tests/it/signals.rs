//! Shared Signals end to end: `authz` queues signed SETs for the MCP server's stream, the MCP
//! server polls (every second here), verifies them and refuses the tokens they revoke, while
//! other sessions of the same user keep working; what it learned survives its restart; the
//! stream answers only its authenticated receiver, and acknowledged events are not delivered
//! again.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::agent::{FormAgent, hidden_inputs};
use testkit::both_backends;

use crate::support::{Backend, System, initialize};

both_backends!(
    a_browser_logout_reaches_the_mcp_server_within_two_polls,
    a_revoked_grant_is_refused_and_other_sessions_keep_working,
    the_stream_is_for_its_authenticated_receiver_and_acks_are_final,
);

const POLL: Duration = Duration::from_secs(1);

async fn system(backend: Backend) -> System {
    System::start_with(backend, |m| m.ssf_poll_secs = POLL.as_secs()).await
}

async fn accepted(sys: &System, token: &str) -> StatusCode {
    sys.post(Some(token), &initialize()).await.status()
}

/// Wait (at most two poll intervals and a little) until the MCP server refuses `token`, which
/// is still unexpired; the time it took.
async fn refused_within_two_polls(sys: &System, token: &str) -> Duration {
    let start = Instant::now();
    loop {
        let r = sys.post(Some(token), &initialize()).await;
        if r.status() == StatusCode::UNAUTHORIZED {
            let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
            assert!(challenge.contains("invalid_token"), "{challenge}");
            return start.elapsed();
        }
        assert_eq!(r.status(), StatusCode::OK);
        assert!(
            start.elapsed() < 2 * POLL + Duration::from_millis(500),
            "still accepted after two poll intervals"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A browser session of testuser (the real sign-in pages) and the access token of its grant.
async fn browser_session(sys: &System) -> (FormAgent, String) {
    let (verifier, challenge) = testkit::pkce();
    let redirect = "http://127.0.0.1:9/callback";
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("response_type", "code")
        .append_pair("client_id", authz::seed::DEMO_CLI_CLIENT)
        .append_pair("redirect_uri", redirect)
        .append_pair("scope", "profile:read")
        .append_pair("resource", &sys.mcp_url)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", "s");
    let agent = FormAgent::new();
    let back = agent
        .sign_in(
            &sys.authz_url,
            &format!("{}/authorize?{}", sys.authz_url, q.finish()),
            "testuser",
            "TestPass123!",
            "approve",
        )
        .await
        .unwrap_or_else(|p| panic!("sign-in stopped: {} {}", p.status, p.body));
    let code = url::Url::parse(&back)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let token = sys
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("client_id", authz::seed::DEMO_CLI_CLIENT),
                ("code", &code),
                ("redirect_uri", redirect),
                ("code_verifier", &verifier),
            ],
            None,
        )
        .await;
    (agent, token)
}

async fn a_browser_logout_reaches_the_mcp_server_within_two_polls(backend: Backend) {
    let sys = system(backend).await;
    let (agent, browser_token) = browser_session(&sys).await;
    // Another session of the same user (the password grant: a session of its own).
    let other = sys.user_token("testuser").await;
    assert_eq!(accepted(&sys, &browser_token).await, StatusCode::OK);
    assert_eq!(accepted(&sys, &other).await, StatusCode::OK);

    // The user signs out in the browser: the confirmation page, then its form.
    let page = agent.get(&format!("{}/logout", sys.authz_url)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let mut fields = hidden_inputs(&page.body);
    fields.push(("decision".into(), "logout".into()));
    let done = agent
        .post_form(&format!("{}/logout", sys.authz_url), &fields)
        .await;
    assert!(done.status < 400, "{} {}", done.status, done.body);
    let took = refused_within_two_polls(&sys, &browser_token).await;
    println!("browser logout refused by the MCP server after {took:?}");
    assert_eq!(
        accepted(&sys, &other).await,
        StatusCode::OK,
        "the other session"
    );

    // What it learned survives a restart of the MCP server (a new state on its database).
    let config = sys.mcp.config.clone();
    let restarted = mcp_resource::build_state_with_clock(config, sys.clock.clone())
        .await
        .unwrap();
    let claims = restarted.verifier.verify(&browser_token).await.unwrap();
    assert!(
        restarted.revocations.refuses(&claims).is_some(),
        "the restarted server still refuses the logged-out session"
    );
    let other_claims = restarted.verifier.verify(&other).await.unwrap();
    assert!(restarted.revocations.refuses(&other_claims).is_none());
}

async fn a_revoked_grant_is_refused_and_other_sessions_keep_working(backend: Backend) {
    let sys = system(backend).await;
    let form = |user: &str, pw: &str| {
        vec![
            ("grant_type".to_owned(), "password".to_owned()),
            (
                "client_id".to_owned(),
                authz::seed::DEMO_CLI_CLIENT.to_owned(),
            ),
            ("username".to_owned(), user.to_owned()),
            ("password".to_owned(), pw.to_owned()),
        ]
    };
    let grant = |f: Vec<(String, String)>| {
        let http = sys.http.clone();
        let url = format!("{}/token", sys.authz_url);
        async move {
            let r: Value = http
                .post(url)
                .form(&f)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            r
        }
    };
    let first = grant(form("testuser", "TestPass123!")).await;
    let second = grant(form("testuser", "TestPass123!")).await;
    let (a1, r1) = (
        first["access_token"].as_str().unwrap(),
        first["refresh_token"].as_str().unwrap(),
    );
    let a2 = second["access_token"].as_str().unwrap();
    assert_eq!(accepted(&sys, a1).await, StatusCode::OK);
    // RFC 7009: the client revokes its first grant (through its refresh token).
    let r = sys
        .http
        .post(format!("{}/revoke", sys.authz_url))
        .form(&[("token", r1), ("client_id", authz::seed::DEMO_CLI_CLIENT)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let took = refused_within_two_polls(&sys, a1).await;
    println!("revoked grant refused by the MCP server after {took:?}");
    assert_eq!(
        accepted(&sys, a2).await,
        StatusCode::OK,
        "the other session"
    );
}

async fn the_stream_is_for_its_authenticated_receiver_and_acks_are_final(backend: Backend) {
    // The MCP server does not poll here: the test is the receiver.
    let sys = System::start_with(backend, |m| m.ssf_poll_secs = 0).await;
    let meta = sys
        .get_json(&format!("{}/.well-known/ssf-configuration", sys.authz_url))
        .await;
    assert_eq!(meta["issuer"], sys.authz_url.as_str());
    assert_eq!(
        meta["delivery_methods_supported"],
        json!(["urn:ietf:rfc:8936"])
    );
    let secret: Value = serde_json::from_str(
        &std::fs::read_to_string(sys.dir.path().join(authz::seed::DEMO_MCP_SECRETS_FILE)).unwrap(),
    )
    .unwrap();
    let secret = secret["client_secret"].as_str().unwrap().to_owned();
    let receiver = authz::seed::DEMO_MCP_CLIENT;
    // Unauthenticated, or another confidential client that is not a receiver: refused.
    let stream_url = meta["configuration_endpoint"].as_str().unwrap();
    let r = sys.http.get(stream_url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (svc, svc_secret) = sys.service_secret();
    let r = sys
        .http
        .get(stream_url)
        .basic_auth(&svc, Some(&svc_secret))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "not a receiver");
    // The receiver: its stream, then polling.
    let stream: Value = sys
        .http
        .get(stream_url)
        .basic_auth(receiver, Some(&secret))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let poll_url = stream["delivery"]["endpoint_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let poll = |body: Value, auth: bool| {
        let mut req = sys.http.post(&poll_url).json(&body);
        if auth {
            req = req.basic_auth(receiver, Some(&secret));
        }
        async move { req.send().await.unwrap() }
    };
    assert_eq!(
        poll(json!({"returnImmediately": true}), false)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // Positive control: nothing yet, then one event after a sign-out.
    let empty: Value = poll(json!({"returnImmediately": true}), true)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(empty["sets"], json!({}));
    let token = sys.user_token("testuser").await;
    let claims = sys.mcp.verifier.verify(&token).await.unwrap();
    let sid = claims.sid.clone().unwrap();
    let r = sys
        .http
        .post(format!("{}/revoke", sys.authz_url))
        .form(&[
            ("token", token.as_str()),
            ("client_id", authz::seed::DEMO_CLI_CLIENT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A long poll returns as soon as the event is there.
    let got: Value = poll(json!({"maxEvents": 10}), true)
        .await
        .json()
        .await
        .unwrap();
    let sets = got["sets"].as_object().unwrap();
    assert_eq!(sets.len(), 1, "{got}");
    let (jti, set) = sets.iter().next().unwrap();
    // A signed SET, verified with the issuer's published keys.
    let header = jsonwebtoken::decode_header(set.as_str().unwrap()).unwrap();
    assert_eq!(header.typ.as_deref(), Some("secevent+jwt"));
    let verified = sys
        .mcp
        .verifier
        .verify_set(set.as_str().unwrap(), receiver)
        .await
        .unwrap();
    assert_eq!(verified["jti"], jti.as_str());
    let event =
        &verified["events"]["https://schemas.openid.net/secevent/caep/event-type/session-revoked"];
    assert!(event.is_object(), "{verified}");
    assert_eq!(verified["sub_id"]["session"]["id"], sid.as_str());
    // A SET for another audience is refused by the receiver's check.
    assert!(
        sys.mcp
            .verifier
            .verify_set(set.as_str().unwrap(), "someone-else")
            .await
            .is_err()
    );
    // Not acknowledged: delivered again. Acknowledged: never again.
    let again: Value = poll(json!({"returnImmediately": true}), true)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        again["sets"].get(jti).is_some(),
        "unacknowledged events come again"
    );
    let acked: Value = poll(json!({"returnImmediately": true, "ack": [jti]}), true)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(acked["sets"], json!({}), "{acked}");
    let after: Value = poll(json!({"returnImmediately": true}), true)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["sets"], json!({}));
    // A malformed poll request is a clear error.
    let r = sys
        .http
        .post(&poll_url)
        .basic_auth(receiver, Some(&secret))
        .header("content-type", "application/json")
        .body("{\"maxEvents\": \"many\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}
