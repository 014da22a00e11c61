//! `private_key_jwt` client authentication (RFC 7523) for metadata-document and registered
//! clients: signed, audience-bound, short-lived, single-use assertions, against keys from the
//! document (`jwks`, or `jwks_uri` through the guarded fetcher).

use serde_json::{Value, json};
use testkit::agent::FormAgent;
use testkit::both_backends;
use testkit::https::Route;

use crate::cimd::{ALICE, consent_page, document, refused, setup};
use crate::support::{Backend, CB, MCP, expect_error, expect_token, pkce, query};

both_backends!(
    a_private_key_jwt_document_client_authenticates_with_single_use_assertions,
    a_document_listing_none_and_private_key_jwt_accepts_either_but_checks_assertions,
    keys_for_encryption_or_another_algorithm_never_verify_an_assertion,
);

/// A client assertion (RFC 7523) for `client_id`, signed with `pem`.
fn assertion(pem: &[u8], client_id: &str, aud: &str, exp: i64, jti: &str) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.kid = Some("k1".into());
    let claims = json!({ "iss": client_id, "sub": client_id, "aud": aud, "exp": exp,
                         "iat": exp - 60, "jti": jti });
    let key = jsonwebtoken::EncodingKey::from_ec_der(pem);
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

async fn a_private_key_jwt_document_client_authenticates_with_single_use_assertions(
    backend: Backend,
) {
    use authz::clock::Clock;
    let (app, host) = setup(backend, |_| {}).await;
    let (pem, jwk) = testkit::https::es256_key("k1");
    let (other_pem, _) = testkit::https::es256_key("k1");
    host.put("/jwks.json", Route::json(&json!({ "keys": [jwk] })));
    let url = host.url("/pkj.json");
    let mut doc = document(&url);
    doc["token_endpoint_auth_method"] = json!("private_key_jwt");
    doc["jwks_uri"] = json!(host.url("/jwks.json"));
    host.put("/pkj.json", Route::json(&doc));
    let meta: Value = app
        .get_json("/.well-known/oauth-authorization-server")
        .await;
    assert!(
        meta["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("private_key_jwt"))
    );

    let agent = FormAgent::new();
    let (verifier, challenge) = pkce();
    let auth = app.authorize_url(
        &url,
        &challenge,
        &[("scope", "notes:read"), ("resource", MCP)],
    );
    let consent = consent_page(&app, &agent, &auth).await;
    let mut fields = testkit::agent::hidden_inputs(&consent.body);
    fields.push(("decision".into(), "approve".into()));
    let back = agent.post_form(&app.url("/consent"), &fields).await;
    let code = query(back.location.as_deref().unwrap())["code"].clone();
    // `aud` is the issuer identifier, a single string (draft-ietf-oauth-rfc7523bis).
    let issuer = app.base.clone();
    let now = app.clock.now();
    let redeem = |assertion: Option<String>| {
        let (app, code, verifier) = (&app, code.clone(), verifier.clone());
        async move {
            let mut form = vec![
                ("grant_type".to_owned(), "authorization_code".to_owned()),
                ("code".to_owned(), code),
                ("redirect_uri".to_owned(), CB.to_owned()),
                ("code_verifier".to_owned(), verifier),
            ];
            if let Some(a) = assertion {
                form.push((
                    "client_assertion_type".into(),
                    authz::clients::assertion::ASSERTION_TYPE.into(),
                ));
                form.push(("client_assertion".into(), a));
            }
            let form: Vec<(&str, &str)> =
                form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            app.token(&form, None).await
        }
    };
    // Refusals first (none of them spends the code): no assertion, a foreign key, the wrong
    // audience (another server, or our token endpoint: issue 24 item 15), a long-lived
    // assertion.
    expect_error(redeem(None).await, 401, "invalid_client").await;
    for bad in [
        assertion(&other_pem, &url, &issuer, now + 60, "j-other-key"),
        assertion(
            &pem,
            &url,
            "https://elsewhere.example/token",
            now + 60,
            "j-aud",
        ),
        assertion(&pem, &url, &app.url("/token"), now + 60, "j-aud-te"),
        assertion(&pem, &url, &issuer, now + 3600, "j-long"),
        assertion(&pem, &url, &issuer, now - 1, "j-expired"),
    ] {
        let msg = expect_error(redeem(Some(bad)).await, 401, "invalid_client").await;
        // Told as a wrong secret is (review 5 F1: nothing proves the caller is the client);
        // the operator reads why in the audit log.
        assert_eq!(msg, "client authentication failed");
        let why = app.last_client_auth_failure().await;
        assert!(why.contains("client assertion"), "{why}");
    }
    // The real one: tokens.
    let good = assertion(&pem, &url, &issuer, now + 60, "j-1");
    let tokens = expect_token(redeem(Some(good.clone())).await).await;
    assert_eq!(
        app.verify(tokens["access_token"].as_str().unwrap(), MCP)
            .await
            .client_id,
        url
    );
    // Replayed: refused, even for another request.
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let refresh_with = |signed: String| {
        let (app, refresh) = (&app, refresh.to_owned());
        async move {
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh.as_str()),
                (
                    "client_assertion_type",
                    authz::clients::assertion::ASSERTION_TYPE,
                ),
                ("client_assertion", signed.as_str()),
            ];
            app.token(&form, None).await
        }
    };
    let msg = expect_error(refresh_with(good).await, 401, "invalid_client").await;
    assert_eq!(msg, "client authentication failed");
    let why = app.last_client_auth_failure().await;
    assert!(why.contains("already used"), "{why}");
    // A fresh assertion refreshes.
    let fresh = assertion(&pem, &url, &issuer, now + 60, "j-2");
    expect_token(refresh_with(fresh).await).await;
    assert_eq!(host.hits("/jwks.json"), 1, "the key set is cached");
    // A document naming private_key_jwt without keys is refused.
    let nokeys = host.url("/nokeys.json");
    let mut doc = document(&nokeys);
    doc["token_endpoint_auth_method"] = json!("private_key_jwt");
    host.put("/nokeys.json", Route::json(&doc));
    refused(&app, &nokeys, "needs the client").await;

    // A registered client uses private_key_jwt too (`authz client add … --jwks-uri`).
    let roots = host.ca_pem.to_str().unwrap().to_owned();
    let allowed = host.host_port();
    let env = [
        ("AUTHZ_CIMD_EXTRA_ROOTS", roots.as_str()),
        ("AUTHZ_CIMD_ALLOWED_PRIVATE_HOSTS", allowed.as_str()),
    ];
    let jwks_uri = host.url("/jwks.json");
    let add = |extra: &[&str]| {
        let mut args = vec![
            "client",
            "add",
            "--id",
            "svc",
            "--name",
            "Signed service",
            "--grant",
            "client_credentials",
            "--scope",
            "notes:read",
            "--auth-method",
            "private_key_jwt",
        ];
        args.extend_from_slice(extra);
        crate::cli::authz_with_env(&app, &env, &args, None)
    };
    let (ok, _, err) = add(&[]);
    assert!(!ok && err.contains("jwks_uri or jwks"), "{err}");
    let (ok, out, err) = add(&["--jwks-uri", &jwks_uri]);
    assert!(ok, "{err}");
    assert!(
        !out.contains("client_secret"),
        "no secret for private_key_jwt: {out}"
    );
    let signed = assertion(&pem, "svc", &issuer, now + 60, "svc-1");
    let resp = app
        .token(
            &[
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    authz::clients::assertion::ASSERTION_TYPE,
                ),
                ("client_assertion", &signed),
            ],
            None,
        )
        .await;
    let t = expect_token(resp).await;
    assert_eq!(
        app.verify(t["access_token"].as_str().unwrap(), MCP)
            .await
            .client_id,
        "svc"
    );
    // Spent assertions are forgotten by housekeeping once expired (a replay then fails on
    // exp, which is checked before jti).
    assert!(
        app.sql_count("SELECT COUNT(*) FROM client_assertions")
            .await
            > 0
    );
    app.clock
        .advance(authz::clients::assertion::MAX_LIFETIME_SECS + 1);
    authz::housekeeping(&app.state).await.unwrap();
    assert_eq!(
        app.sql_count("SELECT COUNT(*) FROM client_assertions")
            .await,
        0
    );
}

/// A document listing `none` and `private_key_jwt` (as ChatGPT's does), with inline `jwks`:
/// the client may present either; an assertion it presents is checked, never dropped for
/// `none`.
async fn a_document_listing_none_and_private_key_jwt_accepts_either_but_checks_assertions(
    backend: Backend,
) {
    use authz::clock::Clock;
    let (app, host) = setup(backend, |_| {}).await;
    let (pem, jwk) = testkit::https::es256_key("k1");
    let (other_pem, _) = testkit::https::es256_key("k1");
    let url = host.url("/both.json");
    let mut doc = document(&url);
    doc["token_endpoint_auth_method"] = json!(["none", "private_key_jwt"]);
    doc["jwks"] = json!({ "keys": [jwk] });
    host.put("/both.json", Route::json(&doc));
    let agent = FormAgent::new();
    let code = |verifier_challenge: (String, String)| {
        let (app, agent, url) = (&app, &agent, url.clone());
        async move {
            let auth = app.authorize_url(
                &url,
                &verifier_challenge.1,
                &[("scope", "notes:read"), ("resource", MCP)],
            );
            let page = agent.get(&auth).await;
            let page = if page.body.contains("action=\"/login\"") {
                let mut f = testkit::agent::hidden_inputs(&page.body);
                f.push(("username".into(), ALICE.0.into()));
                f.push(("password".into(), ALICE.1.into()));
                let next = agent.post_form(&app.url("/login"), &f).await;
                agent.get(&app.url(next.location.as_deref().unwrap())).await
            } else {
                page
            };
            let mut f = testkit::agent::hidden_inputs(&page.body);
            f.push(("decision".into(), "approve".into()));
            let back = agent.post_form(&app.url("/consent"), &f).await;
            query(back.location.as_deref().unwrap())["code"].clone()
        }
    };
    let redeem = |code: String, verifier: String, assertion: Option<String>| {
        let (app, url) = (&app, url.clone());
        async move {
            let mut form = vec![
                ("grant_type".to_owned(), "authorization_code".to_owned()),
                ("code".to_owned(), code),
                ("redirect_uri".to_owned(), CB.to_owned()),
                ("code_verifier".to_owned(), verifier),
            ];
            match assertion {
                Some(a) => {
                    form.push((
                        "client_assertion_type".into(),
                        authz::clients::assertion::ASSERTION_TYPE.into(),
                    ));
                    form.push(("client_assertion".into(), a));
                }
                None => form.push(("client_id".into(), url)),
            }
            let form: Vec<(&str, &str)> =
                form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            app.token(&form, None).await
        }
    };
    // As a public client (none): tokens.
    let pair = pkce();
    let c = code(pair.clone()).await;
    expect_token(redeem(c, pair.0, None).await).await;
    // With a bad assertion: refused, not downgraded to none.
    let pair = pkce();
    let c = code(pair.clone()).await;
    let now = app.clock.now();
    let bad = assertion(&other_pem, &url, &app.base, now + 60, "b-1");
    expect_error(
        redeem(c.clone(), pair.0.clone(), Some(bad)).await,
        401,
        "invalid_client",
    )
    .await;
    // With a good one (the code survived the refused attempt: client authentication comes
    // first): tokens.
    let good = assertion(&pem, &url, &app.base, now + 60, "b-2");
    expect_token(redeem(c, pair.0, Some(good)).await).await;
    let client = app.state.store.get_client(&url).await.unwrap().unwrap();
    assert_eq!(client.auth_method, authz::store::AuthMethod::PrivateKeyJwt);
    assert!(client.also_public && client.is_public());
}

/// `keys::jws`, the one JWS check: the key a header's `kid` names verifies only if it is a
/// signing key (`use` is not `enc`, RFC 7517 §4.2) and, when it states an `alg` (§4.4), only
/// for that algorithm. The same EC key is published three times: for encryption, for RS256
/// only, and plainly; an ES256 assertion naming either of the first two is refused, the third
/// (the positive control) gets a token.
async fn keys_for_encryption_or_another_algorithm_never_verify_an_assertion(backend: Backend) {
    use authz::clock::Clock;
    use authz::store::GrantType;
    let app = crate::support::TestApp::spawn(backend).await;
    let (pem, jwk) = testkit::https::es256_key("k1");
    let variant = |kid: &str, extra: Value| {
        let mut k = jwk.clone();
        k["kid"] = json!(kid);
        for (name, v) in extra.as_object().unwrap() {
            k[name] = v.clone();
        }
        k
    };
    let keys = json!({ "keys": [
        variant("enc", json!({ "use": "enc" })),
        variant("rs", json!({ "alg": "RS256" })),
        variant("sig", json!({ "use": "sig", "alg": "ES256" })),
    ]});
    app.private_key_jwt_client("signed", &keys, &[GrantType::ClientCredentials])
        .await;
    let now = app.clock.now();
    let token = |kid: &'static str, crit: bool| {
        let claims = json!({ "iss": "signed", "sub": "signed", "aud": app.base, "exp": now + 60,
                             "iat": now, "jti": format!("j-{kid}-{crit}") });
        let signed = if crit {
            let mut header = json!({ "alg": "ES256", "kid": kid, "crit": ["exp"], "exp": 1 });
            header["typ"] = json!("JWT");
            sign_raw(&pem, &header, &claims)
        } else {
            crate::idp::sign(&pem, None, kid, &claims)
        };
        let app = &app;
        async move {
            let form = [("grant_type", "client_credentials")];
            app.token_with_assertion(&form, &signed).await
        }
    };
    for kid in ["enc", "rs"] {
        expect_error(token(kid, false).await, 401, "invalid_client").await;
        let why = app.last_client_auth_failure().await;
        assert!(why.contains("matches its kid"), "{kid}: {why}");
    }
    // A header naming critical extensions (RFC 7515 §4.1.11: none is understood here) is
    // refused, even signed by the right key (review 5 F3).
    expect_error(token("sig", true).await, 401, "invalid_client").await;
    let why = app.last_client_auth_failure().await;
    assert!(why.contains("crit"), "{why}");
    expect_token(token("sig", false).await).await;
}

/// A JWS (ES256) with exactly `header`, signed with `pem` (jsonwebtoken's `Header` cannot carry
/// `crit`).
fn sign_raw(pem: &[u8], header: &Value, claims: &Value) -> String {
    use base64::Engine;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let input = format!("{}.{}", b64(header), b64(claims));
    let key = jsonwebtoken::EncodingKey::from_ec_der(pem);
    let sig =
        jsonwebtoken::crypto::sign(input.as_bytes(), &key, jsonwebtoken::Algorithm::ES256).unwrap();
    format!("{input}.{sig}")
}
