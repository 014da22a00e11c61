//! The attack suite at the resource server: RFC 8725 (JWT BCP), RFC 9068 §4, RFC 6750 and the
//! MCP authorization spec. One named test per attack; `docs/security.md` lists them.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use testkit::both_backends;

use crate::support::{
    Backend, System, assert_rejected, b64, call, call_tool, challenge_params, forged_claims, text,
};

both_backends!(
    forged_claims_signed_with_the_real_key_are_accepted,
    alg_none_is_rejected,
    hs256_signed_with_the_public_key_is_rejected,
    unknown_kid_is_rejected,
    malicious_kid_values_are_rejected,
    jku_and_x5u_headers_are_ignored,
    embedded_jwk_header_is_ignored,
    expired_token_is_rejected,
    not_yet_valid_token_is_rejected,
    wrong_issuer_is_rejected,
    token_for_another_audience_is_rejected,
    id_token_used_as_access_token_is_rejected,
    tampered_payload_is_rejected,
    truncated_and_garbled_tokens_are_rejected,
    token_in_query_string_or_body_is_not_accepted,
    two_authorization_headers_are_refused,
    insufficient_scope_on_every_tool_is_403,
    session_id_of_another_user_grants_nothing,
    logged_out_grant_is_refused,
    mcp_floods_get_429,
    one_callers_flood_does_not_spend_anothers_budget,
    oversized_mcp_body_is_refused,
    markup_and_sql_in_notes_are_stored_as_text,
);

fn parts(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
}

fn good_claims(sys: &System) -> Value {
    forged_claims(&sys.authz_url, &sys.mcp_url)
}

/// The positive control of every forged-token test below: the same `forged_claims`, signed
/// with the issuer's real key and a correct header, is accepted. So each rejection is caused
/// by the one thing its test changes, not by the helper.
async fn forged_claims_signed_with_the_real_key_are_accepted(backend: Backend) {
    let sys = System::start(backend).await;
    let key = sys.authz.keys.current().active.clone();
    let t = key.sign_jwt("at+jwt", &good_claims(&sys)).unwrap();
    let r = sys
        .post(Some(&t), &call("get_user_profile", json!({})))
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let profile: Value =
        serde_json::from_str(body["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(profile["username"], "forged");
}

/// RFC 8725 §2.1, §3.1: `alg: none` is never accepted.
async fn alg_none_is_rejected(backend: Backend) {
    let sys = System::start(backend).await;
    let kid = sys.authz.keys.current().active.kid().to_owned();
    let t = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "at+jwt", "kid": kid})),
        b64(&good_claims(&sys))
    );
    assert_rejected(&sys, &t, "alg none").await;
}

/// RFC 8725 §2.1, §3.1: algorithm confusion — HMAC keyed with the RSA public key.
async fn hs256_signed_with_the_public_key_is_rejected(backend: Backend) {
    let sys = System::start(backend).await;
    let jwks: Value = sys
        .http
        .get(format!("{}/.well-known/jwks.json", sys.authz_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (n, kid) = (
        jwks["keys"][0]["n"].as_str().unwrap(),
        jwks["keys"][0]["kid"].as_str().unwrap(),
    );
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    h.typ = Some("at+jwt".into());
    h.kid = Some(kid.into());
    let t = jsonwebtoken::encode(
        &h,
        &good_claims(&sys),
        &jsonwebtoken::EncodingKey::from_secret(n.as_bytes()),
    )
    .unwrap();
    assert_rejected(&sys, &t, "HS256 with the public key").await;
}

/// RFC 8725 §3.10: a key the issuer never published.
async fn unknown_kid_is_rejected(backend: Backend) {
    let sys = System::start(backend).await;
    let (rogue, _) = authz::keys::SigningKey::generate(authz::keys::SigningAlg::Rs256).unwrap();
    let t = rogue.sign_jwt("at+jwt", &good_claims(&sys)).unwrap();
    assert_rejected(&sys, &t, "unknown kid").await;
}

/// RFC 8725 §3.10: `kid` is a lookup key, never a path, URL or SQL.
async fn malicious_kid_values_are_rejected(backend: Backend) {
    let sys = System::start(backend).await;
    let key = sys.authz.keys.current().active.clone();
    for kid in [
        "../../../../etc/passwd",
        "' OR '1'='1",
        "http://evil.example/key",
        "",
        "x".repeat(5000).as_str(),
    ] {
        let input = format!(
            "{}.{}",
            b64(&json!({"alg": "RS256", "typ": "at+jwt", "kid": kid})),
            b64(&good_claims(&sys))
        );
        let sig = URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()).unwrap());
        assert_rejected(&sys, &format!("{input}.{sig}"), "malicious kid").await;
    }
}

fn signed_with_header(header: Value, claims: &Value, key: &authz::keys::SigningKey) -> String {
    let input = format!("{}.{}", b64(&header), b64(claims));
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()).unwrap())
    )
}

/// RFC 8725 §3.10: keys named by `jku` / `x5u` are never fetched or trusted.
async fn jku_and_x5u_headers_are_ignored(backend: Backend) {
    let sys = System::start(backend).await;
    let (rogue, _) = authz::keys::SigningKey::generate(authz::keys::SigningAlg::Rs256).unwrap();
    for extra in [
        ("jku", "http://evil.example/jwks.json"),
        ("x5u", "http://evil.example/cert.pem"),
    ] {
        let mut h = json!({"alg": "RS256", "typ": "at+jwt", "kid": rogue.kid()});
        h[extra.0] = json!(extra.1);
        assert_rejected(
            &sys,
            &signed_with_header(h, &good_claims(&sys), &rogue),
            extra.0,
        )
        .await;
    }
}

/// RFC 8725 §3.10: a public key embedded in the header (`jwk`) proves nothing.
async fn embedded_jwk_header_is_ignored(backend: Backend) {
    let sys = System::start(backend).await;
    let (rogue, _) = authz::keys::SigningKey::generate(authz::keys::SigningAlg::Rs256).unwrap();
    let h = json!({"alg": "RS256", "typ": "at+jwt", "kid": rogue.kid(), "jwk": serde_json::to_value(rogue.public_jwk()).unwrap()});
    assert_rejected(
        &sys,
        &signed_with_header(h, &good_claims(&sys), &rogue),
        "embedded jwk",
    )
    .await;
}

/// RFC 9068 §4, RFC 7519 §4.1.4: past `exp` (beyond the small leeway).
async fn expired_token_is_rejected(backend: Backend) {
    let sys = System::start(backend).await;
    sys.clock.advance(-3600);
    let t = sys.user_token("admin").await;
    sys.clock.advance(3600);
    assert_rejected(&sys, &t, "expired").await;
}

/// RFC 7519 §4.1.5: before `nbf`.
async fn not_yet_valid_token_is_rejected(backend: Backend) {
    let sys = System::start(backend).await;
    let key = sys.authz.keys.current().active.clone();
    let mut c = good_claims(&sys);
    c["nbf"] = json!(c["iat"].as_i64().unwrap() + 3600);
    assert_rejected(
        &sys,
        &key.sign_jwt("at+jwt", &c).unwrap(),
        "nbf in the future",
    )
    .await;
}

/// RFC 9068 §4: `iss` must be exactly the configured issuer, even with the right key.
async fn wrong_issuer_is_rejected(backend: Backend) {
    let sys = System::start(backend).await;
    let key = sys.authz.keys.current().active.clone();
    for iss in [
        "http://evil.example".to_owned(),
        format!("{}/", sys.authz_url),
    ] {
        let t = key
            .sign_jwt("at+jwt", &forged_claims(&iss, &sys.mcp_url))
            .unwrap();
        assert_rejected(&sys, &t, "wrong issuer").await;
    }
}

/// RFC 8707, RFC 9068 §4, MCP spec (no passthrough): a real token for another resource.
async fn token_for_another_audience_is_rejected(backend: Backend) {
    let sys = System::start(backend).await;
    let key = sys.authz.keys.current().active.clone();
    for aud in [
        "https://api.other.example".to_owned(),
        format!("{}/", sys.mcp_url),
        format!("{}/api", sys.authz_url),
    ] {
        let t = key
            .sign_jwt("at+jwt", &forged_claims(&sys.authz_url, &aud))
            .unwrap();
        assert_rejected(&sys, &t, "another audience").await;
    }
}

/// RFC 9068 §4, RFC 8725 §3.11: an ID token (typ JWT) is not an access token.
async fn id_token_used_as_access_token_is_rejected(backend: Backend) {
    let sys = System::start(backend).await;
    let key = sys.authz.keys.current().active.clone();
    assert_rejected(
        &sys,
        &key.sign_jwt("JWT", &good_claims(&sys)).unwrap(),
        "ID token",
    )
    .await;
}

/// RFC 7515 §5.2: a changed payload breaks the signature.
async fn tampered_payload_is_rejected(backend: Backend) {
    let sys = System::start(backend).await;
    let good = sys.user_token("readonly").await;
    let p = parts(&good);
    let mut c: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&p[1]).unwrap()).unwrap();
    c["scope"] = json!("profile:read notes:read notes:write audit:read");
    assert_rejected(
        &sys,
        &format!("{}.{}.{}", p[0], b64(&c), p[2]),
        "escalated scope",
    )
    .await;
}

/// Malformed input never reaches a handler.
async fn truncated_and_garbled_tokens_are_rejected(backend: Backend) {
    let sys = System::start(backend).await;
    let good = sys.user_token("readonly").await;
    for t in [
        good[..good.len() - 20].to_owned(),
        "a.b.c".into(),
        "....".into(),
        format!("{good}.x"),
        good.replace('.', ""),
    ] {
        assert_rejected(&sys, &t, "garbled").await;
    }
}

/// RFC 6750 §2, MCP spec: bearer tokens in the Authorization header only.
async fn token_in_query_string_or_body_is_not_accepted(backend: Backend) {
    let sys = System::start(backend).await;
    let good = sys.user_token("admin").await;
    let r = sys
        .http
        .post(format!("{}?access_token={good}", sys.mcp_url))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(call("get_user_profile", json!({})).to_string())
        .send()
        .await
        .unwrap();
    // RFC 6750 §3.1: a request using an unsupported method is invalid_request (400).
    assert_eq!(r.status(), 400);
    let p = challenge_params(r.headers()["www-authenticate"].to_str().unwrap());
    assert_eq!(p["error"], "invalid_request");
    let r = sys
        .http
        .post(&sys.mcp_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json, text/event-stream")
        .body(format!("access_token={good}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// One `Authorization` header, as `authz` requires (review 4 (1)): with two, which one a
/// component reads is up to each (a proxy may check the first, we the last), so neither is
/// used. Positive control: the same good token alone is accepted.
async fn two_authorization_headers_are_refused(backend: Backend) {
    let sys = System::start(backend).await;
    let good = sys.user_token("admin").await;
    let profile = call("get_user_profile", json!({}));
    let r = sys.post(Some(&good), &profile).await;
    assert_eq!(r.status(), 200, "the control: one header is accepted");
    for other in [format!("Bearer {good}"), "Bearer garbage".to_owned()] {
        // `post_with` adds a second `Authorization` beside the token's.
        let r = sys
            .post_with(Some(&good), &profile, &[("authorization", &other)])
            .await;
        assert_eq!(r.status(), 400);
        let p = challenge_params(r.headers()["www-authenticate"].to_str().unwrap());
        assert_eq!(p["error"], "invalid_request");
    }
}

/// MCP spec (scope challenges): every tool and resource checks its scope, with a 403 that
/// names what is needed.
async fn insufficient_scope_on_every_tool_is_403(backend: Backend) {
    let sys = System::start(backend).await;
    let bot = sys.service_token().await; // profile:read notes:read notes:write only
    let client_scopes = "profile:read notes:read notes:write";
    for (tool, scope) in mcp_resource::rbac::TOOLS {
        if scope.is_empty() || client_scopes.contains(scope) {
            continue;
        }
        let r = sys.post(Some(&bot), &call(tool, json!({}))).await;
        assert_eq!(r.status(), 403, "{tool}");
        let p = challenge_params(r.headers()["www-authenticate"].to_str().unwrap());
        assert_eq!(p["error"], "insufficient_scope");
        assert!(p["scope"].split(' ').any(|s| s == *scope), "{tool}");
    }
    let readonly = sys.user_token("readonly").await;
    let r = sys
        .post(
            Some(&readonly),
            &call("create_secure_note", json!({"title": "t", "content": "c"})),
        )
        .await;
    assert_eq!(r.status(), 403);
    let r = sys.post(Some(&readonly), &json!({"jsonrpc": "2.0", "id": 3, "method": "resources/read", "params": {"uri": "security://summary"}})).await;
    assert_eq!(r.status(), 403);
}

/// MCP spec §security (session hijacking): a session id is not a credential. The server is
/// stateless; a stolen `Mcp-Session-Id` with another user's token shows only that user's data.
async fn session_id_of_another_user_grants_nothing(backend: Backend) {
    let sys = System::start(backend).await;
    let alice = sys.user_token("testuser").await;
    let client = sys.client(&alice).await;
    call_tool(
        &client,
        "create_secure_note",
        json!({"title": "alice only", "content": "secret"}),
    )
    .await;
    client.cancel().await.unwrap();
    let mallory = sys.user_token("admin").await;
    let r = sys
        .http
        .post(&sys.mcp_url)
        .bearer_auth(&mallory)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", "any-session-id-alice-had")
        .body(call("list_secure_notes", json!({})).to_string())
        .send()
        .await
        .unwrap();
    let body = r.text().await.unwrap();
    assert!(!body.contains("alice only"), "{body}");
    let r = sys
        .http
        .post(&sys.mcp_url)
        .header("mcp-session-id", "any-session-id-alice-had")
        .header("content-type", "application/json")
        .body(call("list_secure_notes", json!({})).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "a session id alone is nothing");
}

/// After logout the grant's tokens are refused (sid), even though they have not expired.
async fn logged_out_grant_is_refused(backend: Backend) {
    let sys = System::start(backend).await;
    let t = sys.user_token("testuser").await;
    let client = sys.client(&t).await;
    let r = call_tool(&client, "logout", json!({})).await;
    assert_ne!(r.is_error, Some(true), "{}", text(&r));
    client.cancel().await.unwrap();
    assert_rejected(&sys, &t, "logged-out grant").await;
}

/// Rate limits: per client IP on the MCP endpoint → 429 with Retry-After.
async fn mcp_floods_get_429(backend: Backend) {
    let sys = System::start_with(backend, |c| c.rate_per_minute = 5).await;
    let t = sys.user_token("readonly").await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = sys
            .post(Some(&t), &call("get_user_profile", json!({})))
            .await;
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            assert!(
                r.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse::<u32>()
                    .unwrap()
                    > 0
            );
        }
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);
}

/// Rate limits per authenticated caller (`sub` + `client_id`), counted after the token is
/// verified: one caller over its budget gets 429, another caller from the same address does not.
async fn one_callers_flood_does_not_spend_anothers_budget(backend: Backend) {
    let sys = System::start_with(backend, |c| {
        c.rate_per_minute = 0;
        c.rate_per_caller_per_minute = 2;
    })
    .await;
    let flooder = sys.user_token("readonly").await;
    let other = sys.user_token("testuser").await;
    let profile = call("get_user_profile", json!({}));
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(sys.post(Some(&flooder), &profile).await.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 429]);
    assert_eq!(sys.post(Some(&other), &profile).await.status(), 200);
    // A bad token is refused before it is counted: it cannot spend anyone's budget.
    assert_eq!(sys.post(Some("not-a-token"), &profile).await.status(), 401);
}

/// Request size limit on the MCP endpoint.
async fn oversized_mcp_body_is_refused(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sys = System::start(backend).await;
    let t = sys.user_token("testuser").await;
    let addr = sys.mcp_base.strip_prefix("http://").unwrap().to_owned();
    let max = mcp_resource::auth::MAX_BODY;
    // A raw connection, so the outcome is exact: the request head (and, chunked, exactly the
    // bytes up to one past the limit) is sent, then the answer is read.
    let exchange = |head: String, body: Vec<u8>| {
        let addr = addr.clone();
        async move {
            let mut sock = tokio::net::TcpStream::connect(&addr).await.unwrap();
            sock.write_all(head.as_bytes()).await.unwrap();
            sock.write_all(&body).await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = sock.read(&mut buf).await.unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        }
    };
    let head = |extra: &str| {
        format!(
            "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {t}\r\n\
             Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
             {extra}\r\n"
        )
    };
    // Declared too large: refused before any of the body is read.
    let declared = exchange(head(&format!("Content-Length: {}\r\n", 4 * max)), vec![]).await;
    assert!(declared.starts_with("HTTP/1.1 413"), "{declared}");
    // Not declared (chunked): refused once one byte past the limit has arrived.
    let mut chunk = format!("{:x}\r\n", max + 1).into_bytes();
    chunk.extend(std::iter::repeat_n(b'x', max + 1));
    let streamed = exchange(head("Transfer-Encoding: chunked\r\n"), chunk).await;
    assert!(streamed.starts_with("HTTP/1.1 413"), "{streamed}");
    // Positive control: a request within the limit is served.
    let ok = call("get_user_profile", json!({ "pad": "x".repeat(max / 2) })).to_string();
    let served = exchange(
        head(&format!("Content-Length: {}\r\n", ok.len())),
        ok.into_bytes(),
    )
    .await;
    assert!(served.starts_with("HTTP/1.1 200"), "{served}");
}

/// XSS / SQL injection in tool input: stored and returned as text.
async fn markup_and_sql_in_notes_are_stored_as_text(backend: Backend) {
    let sys = System::start(backend).await;
    let t = sys.user_token("testuser").await;
    let client = sys.client(&t).await;
    let evil = "<script>alert(1)</script>' OR 1=1; DROP TABLE notes; --";
    let created: Value = serde_json::from_str(&text(
        &call_tool(
            &client,
            "create_secure_note",
            json!({"title": evil, "content": evil}),
        )
        .await,
    ))
    .unwrap();
    let got: Value = serde_json::from_str(&text(
        &call_tool(&client, "get_secure_note", json!({"id": created["id"]})).await,
    ))
    .unwrap();
    assert_eq!(got["title"], evil);
    assert_eq!(got["content"], evil);
    let listed = text(&call_tool(&client, "list_secure_notes", json!({})).await);
    assert!(listed.contains("DROP TABLE"));
    client.cancel().await.unwrap();
}
