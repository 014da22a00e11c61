//! Issue 24 items 11 and 15: whom an identity provider's ID-JAG may speak for, and whose
//! audience a signed assertion must name. Each refusal beside its positive control, on SQLite
//! and PostgreSQL. (See `round3/mod.rs`.)
//!
//! Item 11: an ID-JAG mapped by `email` got an admin token with no `email_verified`, with
//! `email: "admin"` (matched as a username), or with `ADMIN@EXAMPLE.COM`. Now: `email` only
//! with `email_verified: true`, in an allowed domain, never a username; the default mapping is
//! an operator's link of (`iss`, `sub`); privileged users only for issuers allowed to.
//!
//! Item 15: a `private_key_jwt` assertion whose `aud` was the token endpoint, or an array
//! holding the issuer, was accepted. Now (draft-ietf-oauth-rfc7523bis): the issuer identifier
//! as a single JSON string, nothing else — for client assertions (at `/token` and `/par`) and
//! for ID-JAGs.

use authz::clients::assertion::ASSERTION_TYPE;
use authz::clock::Clock;
use authz::config::id_jag::{SubjectClaim, TrustedIssuer};
use authz::protocol::id_jag_subject;
use authz::store::GrantType;
use serde_json::{Value, json};
use testkit::both_backends;

use crate::idp::{TestIdp, agent_client, jwt_bearer, sign};
use crate::support::{Backend, CB, MCP, TestApp, expect_error, expect_token, pkce};

both_backends!(
    item_11_an_unverified_email_is_refused,
    item_11_an_email_is_never_matched_as_a_username,
    item_11_the_upper_case_email_of_an_admin_is_refused_as_privileged,
    item_11_an_email_outside_the_allowed_domains_is_refused,
    item_11_a_linked_subject_maps_to_the_linked_user_through_the_cli,
    item_11_an_unlinked_subject_is_refused_by_the_default_mapping,
    item_11_a_privileged_user_needs_an_issuer_allowed_to_speak_for_them,
    item_15_a_client_assertion_for_the_token_endpoint_or_an_array_is_refused,
    item_15_an_id_jag_audience_must_be_the_issuer_as_a_single_string,
);

const PW: &str = "correct horse battery staple";
const AGENT: &str = "agent";
/// Maps by `email`, for addresses at example.com.
const MAIL_IDP: &str = "https://mail.idp.example";
/// The default mapping (links), not allowed to speak for privileged users.
const LINK_IDP: &str = "https://link.idp.example";
/// The default mapping (links), allowed to speak for privileged users.
const TRUSTED_IDP: &str = "https://trusted.idp.example";
/// Maps by `preferred_username`.
const NAME_IDP: &str = "https://name.idp.example";

struct Fx {
    app: TestApp,
    idp: TestIdp,
    secret: String,
    alice: String,
    admin: String,
}

async fn setup(backend: Backend) -> Fx {
    let idp = TestIdp::start("/jwks.json", "k1").await;
    let jwks_uri = idp.jwks_uri();
    let issuer = |iss: &str| TrustedIssuer {
        issuer: iss.into(),
        jwks_uri: jwks_uri.clone(),
        allowed_clients: vec![AGENT.into()],
        ..Default::default()
    };
    let issuers = vec![
        TrustedIssuer {
            subject_claim: SubjectClaim::Email,
            email_domains: vec!["example.com".into()],
            ..issuer(MAIL_IDP)
        },
        issuer(LINK_IDP),
        TrustedIssuer {
            allow_privileged: true,
            ..issuer(TRUSTED_IDP)
        },
        TrustedIssuer {
            subject_claim: SubjectClaim::PreferredUsername,
            ..issuer(NAME_IDP)
        },
    ];
    let app = TestApp::spawn_with(backend, |c| {
        idp.trust(c);
        c.id_jag.issuers = issuers;
    })
    .await;
    let alice = app.user("alice", PW, "user").await;
    let admin = app.user("admin", PW, "admin").await;
    for (id, email) in [(&alice, "alice@example.com"), (&admin, "admin@example.com")] {
        app.state
            .store
            .set_user_email(id, Some(email), app.clock.now())
            .await
            .unwrap();
    }
    let secret = agent_client(&app, AGENT).await;
    Fx {
        app,
        idp,
        secret,
        alice,
        admin,
    }
}

/// A valid ID-JAG's claims from `iss` for subject `U-1`, the agent and MCP.
fn claims(app: &TestApp, iss: &str, jti: &str) -> Value {
    let now = app.clock.now();
    json!({
        "iss": iss, "sub": "U-1", "aud": app.base, "client_id": AGENT, "jti": jti,
        "iat": now, "exp": now + 120, "resource": MCP, "scope": "notes:read",
    })
}

/// Claims from `MAIL_IDP` asserting `email`, with `email_verified` as given (absent: Null).
fn mail(app: &TestApp, jti: &str, email: &str, verified: Value) -> Value {
    let mut c = claims(app, MAIL_IDP, jti);
    c["email"] = json!(email);
    if !verified.is_null() {
        c["email_verified"] = verified;
    }
    c
}

impl Fx {
    fn mint(&self, claims: &Value) -> String {
        self.idp.mint(claims)
    }

    async fn present(&self, claims: &Value) -> reqwest::Response {
        jwt_bearer(&self.app, (AGENT, &self.secret), &self.mint(claims), &[]).await
    }

    /// Refused with `invalid_grant` naming `why`.
    async fn refused(&self, claims: &Value, why: &str) {
        let msg = expect_error(self.present(claims).await, 400, "invalid_grant").await;
        assert!(msg.contains(why), "{why:?} not in {msg:?}");
    }

    /// Accepted: the `sub` (local user id) of the access token.
    async fn accepted(&self, claims: &Value) -> String {
        let t = expect_token(self.present(claims).await).await;
        self.app
            .verify(t["access_token"].as_str().unwrap(), MCP)
            .await
            .sub
    }

    /// The reasons of the `id_jag.refused` events so far.
    async fn refusals(&self) -> Vec<String> {
        self.app
            .audit_of("id_jag.refused")
            .await
            .into_iter()
            .map(|e| e.details["reason"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

async fn item_11_an_unverified_email_is_refused(backend: Backend) {
    let fx = setup(backend).await;
    let app = &fx.app;
    let alice = "alice@example.com";
    // No email_verified at all, the string "true", false: refused.
    fx.refused(&mail(app, "v-1", alice, Value::Null), "not verified")
        .await;
    fx.refused(&mail(app, "v-2", alice, json!("true")), "not verified")
        .await;
    fx.refused(&mail(app, "v-3", alice, json!(false)), "not verified")
        .await;
    assert_eq!(fx.refusals().await, ["email_unverified"; 3]);
    // Positive control: the boolean true.
    let sub = fx.accepted(&mail(app, "v-4", alice, json!(true))).await;
    assert_eq!(sub, fx.alice);
}

async fn item_11_an_email_is_never_matched_as_a_username(backend: Backend) {
    let fx = setup(backend).await;
    let app = &fx.app;
    let bob = app.user("bob", PW, "user").await;
    // The reproduction (`email: "admin"`), and the same for a plain user, so the
    // privileged rule is not what refuses it.
    for (n, name) in ["admin", "bob"].into_iter().enumerate() {
        let c = mail(app, &format!("u-{n}"), name, json!(true));
        fx.refused(&c, "not an address in a domain").await;
    }
    // Positive control: bob's address (not his username) names him.
    app.state
        .store
        .set_user_email(&bob, Some("bob@example.com"), app.clock.now())
        .await
        .unwrap();
    let c = mail(app, "u-ok", "bob@example.com", json!(true));
    assert_eq!(fx.accepted(&c).await, bob);
}

async fn item_11_the_upper_case_email_of_an_admin_is_refused_as_privileged(backend: Backend) {
    let fx = setup(backend).await;
    let app = &fx.app;
    let c = mail(app, "p-1", "ADMIN@EXAMPLE.COM", json!(true));
    fx.refused(&c, "may not speak for privileged users").await;
    fx.refused(
        &mail(app, "p-2", "admin@example.com", json!(true)),
        "privileged",
    )
    .await;
    assert_eq!(fx.refusals().await, ["privileged_user"; 2]);
    // Positive control: a plain user's address, in any case, maps to them.
    let c = mail(app, "p-3", "ALICE@Example.COM", json!(true));
    assert_eq!(fx.accepted(&c).await, fx.alice);
    // Once admin is no longer privileged (a role change), the same address maps to them: the
    // refusal was the privileged rule, not the lookup.
    authz::identity::admin::set_roles(
        &*app.state.store,
        &app.state.config,
        &app.state.events,
        "test",
        "admin",
        vec!["user".into()],
    )
    .await
    .unwrap();
    let c = mail(app, "p-4", "ADMIN@EXAMPLE.COM", json!(true));
    assert_eq!(fx.accepted(&c).await, fx.admin);
}

async fn item_11_an_email_outside_the_allowed_domains_is_refused(backend: Backend) {
    let fx = setup(backend).await;
    let app = &fx.app;
    // Local users whose addresses the IdP is not trusted for (suffix tricks, a subdomain, a
    // trailing dot).
    for (n, email) in [
        "eve@evil-example.com",
        "eve@example.com.evil",
        "eve@sub.example.com",
        "eve@example.com.",
    ]
    .into_iter()
    .enumerate()
    {
        let id = app.user(&format!("eve{n}"), PW, "user").await;
        app.state
            .store
            .set_user_email(&id, Some(email), app.clock.now())
            .await
            .unwrap();
        let c = mail(app, &format!("d-{n}"), email, json!(true));
        fx.refused(&c, "not an address in a domain").await;
    }
    assert_eq!(fx.refusals().await, ["email_domain"; 4]);
    // Positive control: an allowed domain.
    let c = mail(app, "d-ok", "alice@example.com", json!(true));
    assert_eq!(fx.accepted(&c).await, fx.alice);
}

async fn item_11_a_linked_subject_maps_to_the_linked_user_through_the_cli(backend: Backend) {
    let fx = setup(backend).await;
    let app = &fx.app;
    let jwks_uri = fx.idp.jwks_uri();
    let env = [
        ("AUTHZ_ID_JAG_ISSUER", LINK_IDP),
        ("AUTHZ_ID_JAG_JWKS_URI", jwks_uri.as_str()),
        ("AUTHZ_ID_JAG_CLIENTS", AGENT),
    ];
    let cli = |args: &[&str]| crate::cli::authz_with_env(app, &env, args, None);
    // Not linked yet: refused.
    fx.refused(&claims(app, LINK_IDP, "l-0"), "sub does not name a user")
        .await;
    // `authz id-jag link`: prints what it did; the grant now speaks for alice.
    let (ok, out, err) = cli(&["id-jag", "link", LINK_IDP, "U-1", "alice"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("linked sub \"U-1\"") && out.contains("alice") && out.contains(&fx.alice),
        "{out}"
    );
    assert_eq!(fx.accepted(&claims(app, LINK_IDP, "l-1")).await, fx.alice);
    // Only that subject, only at that issuer.
    let mut other = claims(app, LINK_IDP, "l-2");
    other["sub"] = json!("U-2");
    fx.refused(&other, "sub does not name a user").await;
    fx.refused(&claims(app, TRUSTED_IDP, "l-3"), "sub does not name a user")
        .await;
    // A pair is linked once (no silent change); an unknown issuer or user is refused.
    let (ok, _, err) = cli(&["id-jag", "link", LINK_IDP, "U-1", "admin"]);
    assert!(!ok && err.contains("U-1"), "{err}");
    let (ok, _, err) = cli(&["id-jag", "link", "https://evil.idp.example", "U-9", "alice"]);
    assert!(
        !ok && err.contains("not a configured ID-JAG issuer"),
        "{err}"
    );
    let (ok, _, err) = cli(&["id-jag", "link", LINK_IDP, "U-9", "nobody"]);
    assert!(!ok && err.contains("nobody"), "{err}");
    // Linking a privileged user says it will not work for this issuer.
    let (ok, out, err) = cli(&["id-jag", "link", LINK_IDP, "U-ADM", "admin"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("note:") && out.contains("allow_privileged"),
        "{out}"
    );
    // `links --json` lists them.
    let (ok, out, err) = cli(&["id-jag", "links", "--json"]);
    assert!(ok, "{err}");
    let links: Value = serde_json::from_str(&out).unwrap();
    let pairs: Vec<(&str, &str, &str)> = links
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["issuer"].as_str().unwrap(),
                l["sub"].as_str().unwrap(),
                l["username"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        [(LINK_IDP, "U-1", "alice"), (LINK_IDP, "U-ADM", "admin")]
    );
    // `unlink`: refused again.
    let (ok, out, err) = cli(&["id-jag", "unlink", LINK_IDP, "U-1"]);
    assert!(
        ok && out.contains("unlinked") && out.contains("alice"),
        "{out}{err}"
    );
    fx.refused(&claims(app, LINK_IDP, "l-4"), "sub does not name a user")
        .await;
    let (ok, _, _) = cli(&["id-jag", "unlink", LINK_IDP, "U-1"]);
    assert!(!ok, "nothing left to unlink");
    // Audited, with the operator as actor.
    let events = app.audit_events().await;
    for kind in ["id_jag.linked", "id_jag.unlinked"] {
        assert!(
            events.iter().any(|e| e.kind == kind
                && e.actor.as_deref() == Some("cli")
                && e.subject.as_deref() == Some(fx.alice.as_str())
                && e.details["issuer"] == LINK_IDP
                && e.details["sub"] == "U-1"),
            "{kind} audited"
        );
    }
}

async fn item_11_an_unlinked_subject_is_refused_by_the_default_mapping(backend: Backend) {
    let fx = setup(backend).await;
    let app = &fx.app;
    assert_eq!(
        SubjectClaim::default(),
        SubjectClaim::Sub,
        "links by default"
    );
    // Everything the old default would have used: a verified address and a username. The
    // issuer maps by link, and U-2 is not linked.
    let mut c = claims(app, LINK_IDP, "n-1");
    c["sub"] = json!("U-2");
    c["email"] = json!("alice@example.com");
    c["email_verified"] = json!(true);
    c["preferred_username"] = json!("alice");
    fx.refused(&c, "sub does not name a user").await;
    assert_eq!(fx.refusals().await, ["unknown_user"]);
    // Positive control: the linked subject.
    id_jag_subject::link(&app.state, "test", LINK_IDP, "U-1", "alice")
        .await
        .unwrap();
    assert_eq!(fx.accepted(&claims(app, LINK_IDP, "n-2")).await, fx.alice);
}

async fn item_11_a_privileged_user_needs_an_issuer_allowed_to_speak_for_them(backend: Backend) {
    let fx = setup(backend).await;
    let app = &fx.app;
    for iss in [LINK_IDP, TRUSTED_IDP] {
        id_jag_subject::link(&app.state, "test", iss, "U-1", "admin")
            .await
            .unwrap();
    }
    // A link to an admin from an issuer without allow_privileged: refused…
    fx.refused(&claims(app, LINK_IDP, "a-1"), "privileged")
        .await;
    // …and by preferred_username too (every mapping kind).
    let mut c = claims(app, NAME_IDP, "a-2");
    c["preferred_username"] = json!("admin");
    fx.refused(&c, "privileged").await;
    assert_eq!(fx.refusals().await, ["privileged_user"; 2]);
    // Positive controls: the issuer allowed to speak for privileged users gets an admin token;
    // the username mapping still works for a plain user.
    assert_eq!(
        fx.accepted(&claims(app, TRUSTED_IDP, "a-3")).await,
        fx.admin
    );
    c["jti"] = json!("a-4");
    c["preferred_username"] = json!("alice");
    assert_eq!(fx.accepted(&c).await, fx.alice);
}

/// A `private_key_jwt` client assertion for `client_id` with the given `aud`.
fn client_assertion(pem: &[u8], client_id: &str, aud: Value, now: i64, jti: &str) -> String {
    let claims = json!({ "iss": client_id, "sub": client_id, "aud": aud, "exp": now + 60,
                         "iat": now, "jti": jti });
    sign(pem, None, "k1", &claims)
}

async fn item_15_a_client_assertion_for_the_token_endpoint_or_an_array_is_refused(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let (pem, jwk) = testkit::https::es256_key("k1");
    let keys = json!({ "keys": [jwk] });
    let grants = [GrantType::ClientCredentials, GrantType::AuthorizationCode];
    app.private_key_jwt_client("signed", &keys, &grants).await;
    let now = app.clock.now();
    let base = app.base.clone();
    let token = |aud: Value, jti: &str| {
        let signed = client_assertion(&pem, "signed", aud, now, jti);
        let app = &app;
        async move {
            let form = [("grant_type", "client_credentials")];
            app.token_with_assertion(&form, &signed).await
        }
    };
    for (n, aud) in [
        json!(format!("{base}/token")),
        json!(format!("{base}/par")),
        json!([base, "https://other-as.example"]),
        json!([format!("{base}/token")]),
        json!([base]),
        json!(format!("{base}/")),
    ]
    .into_iter()
    .enumerate()
    {
        let resp = token(aud.clone(), &format!("t-{n}")).await;
        expect_error(resp, 401, "invalid_client").await;
        // The reason is the audit log's (review 5 F1: the client is told only that it failed).
        let why = app.last_client_auth_failure().await;
        assert!(why.contains("aud must be the issuer"), "{aud}: {why}");
    }
    // Positive control: the issuer identifier, a single string.
    expect_token(token(json!(base), "t-ok").await).await;

    // The same rule at the PAR endpoint (RFC 9126 §2 as updated by rfc7523bis).
    let (_, challenge) = pkce();
    let par = |aud: Value, jti: &str| {
        let signed = client_assertion(&pem, "signed", aud, now, jti);
        let (app, challenge) = (&app, challenge.clone());
        async move {
            let form = [
                ("response_type", "code"),
                ("client_id", "signed"),
                ("redirect_uri", CB),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
                ("scope", "notes:read"),
                ("client_assertion_type", ASSERTION_TYPE),
                ("client_assertion", signed.as_str()),
            ];
            app.http
                .post(app.url("/par"))
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    let resp = par(json!(format!("{base}/par")), "p-0").await;
    expect_error(resp, 401, "invalid_client").await;
    let why = app.last_client_auth_failure().await;
    assert!(why.contains("aud must be the issuer"), "{why}");
    assert_eq!(par(json!(base), "p-ok").await.status(), 201);
}

async fn item_15_an_id_jag_audience_must_be_the_issuer_as_a_single_string(backend: Backend) {
    let fx = setup(backend).await;
    let app = &fx.app;
    id_jag_subject::link(&app.state, "test", LINK_IDP, "U-1", "alice")
        .await
        .unwrap();
    let base = app.base.clone();
    for (n, aud) in [
        json!([base]),
        json!([base, "https://other-as.example"]),
        json!(format!("{base}/token")),
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = claims(app, LINK_IDP, &format!("aud-{n}"));
        c["aud"] = aud;
        fx.refused(&c, "aud must be this server's issuer").await;
    }
    // Positive control: the issuer as a string.
    assert_eq!(
        fx.accepted(&claims(app, LINK_IDP, "aud-ok")).await,
        fx.alice
    );
}
