//! A provider whose answers the test writes: an https host serving OpenID Provider metadata,
//! an ES256 JWK Set, and the token (and user-info) answers the test puts there for each round
//! trip, signed with the test's key. What a compromised, misconfigured or malicious provider
//! (or an attacker between the browser and us) could send is refused; each refusal sits beside
//! its positive control.

use authz::clock::Clock;
use authz::config::upstream::{ClaimMapping, Upstream, UpstreamKind};
use serde_json::{Value, json};
use shared::secret::ClientSecret;
use testkit::agent::{FormAgent, Page};
use testkit::both_backends;
use testkit::https::{HttpsHost, Route};

use super::{CORP, live_sessions, trust};
use crate::idp::{publish_key, sign};
use crate::support::{Backend, TestApp, query};

both_backends!(
    tampered_or_mis_issued_id_tokens_are_refused,
    a_verified_email_links_but_never_to_a_privileged_account,
    roles_follow_the_upstream_groups_at_every_sign_in,
    a_plain_oauth2_provider_signs_people_in,
    a_back_channel_logout_ends_the_upstream_sessions_once,
    the_cli_lists_providers_and_fails_on_one_that_cannot_be_used,
);

const KID: &str = "k1";

pub(super) struct Provider {
    pub host: HttpsHost,
    pub pem: Vec<u8>,
    pub app: TestApp,
    pub agent: FormAgent,
}

impl Provider {
    pub(super) async fn start(
        backend: Backend,
        kind: UpstreamKind,
        edit: impl FnOnce(&mut Upstream),
    ) -> Self {
        Self::start_with(backend, kind, edit, |_| {}).await
    }

    /// As `start`, with the downstream's configuration edited too.
    pub(super) async fn start_with(
        backend: Backend,
        kind: UpstreamKind,
        edit: impl FnOnce(&mut Upstream),
        config: impl FnOnce(&mut authz::config::Config),
    ) -> Self {
        let host = HttpsHost::start().await;
        let (pem, _) = publish_key(&host, "/jwks", KID);
        let issuer = host.url("");
        host.put(
            "/.well-known/openid-configuration",
            Route::json(&json!({
                "issuer": issuer,
                "authorization_endpoint": host.url("/authorize"),
                "token_endpoint": host.url("/token"),
                "jwks_uri": host.url("/jwks"),
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
                "id_token_signing_alg_values_supported": ["ES256"],
                "revocation_endpoint": host.url("/revoke"),
            })),
        );
        let mut entry = Upstream {
            id: CORP.into(),
            kind,
            name: "Scripted".into(),
            client_id: "rp".into(),
            client_secret: Some(ClientSecret::new("rp-secret")),
            jit: true,
            roles: vec!["user".into()],
            ..Upstream::default()
        };
        match kind {
            UpstreamKind::Oidc => entry.issuer = Some(issuer.clone()),
            UpstreamKind::Oauth2 => {
                entry.authorization_endpoint = Some(host.url("/authorize"));
                entry.token_endpoint = Some(host.url("/token"));
                entry.userinfo_endpoint = Some(host.url("/user"));
            }
        }
        edit(&mut entry);
        let (ca, hp) = (host.ca_pem.clone(), host.host_port());
        let app = TestApp::spawn_with(backend, |c| {
            trust(c, ca, hp);
            c.upstream = vec![entry];
            config(c);
        })
        .await;
        Self {
            host,
            pem,
            app,
            agent: FormAgent::new(),
        }
    }

    pub(super) fn issuer(&self) -> String {
        self.host.url("")
    }

    /// Claims of a good ID token for `sub` with `nonce`.
    pub(super) fn claims(&self, sub: &str, nonce: &str) -> Value {
        let now = self.app.clock.now();
        json!({
            "iss": self.issuer(), "aud": "rp", "sub": sub, "nonce": nonce,
            "exp": now + 300, "iat": now,
        })
    }

    /// One round trip from the console's sign-in: begin, let `answer` write the provider's
    /// answers for the round trip's nonce, come back with a code; the downstream's answer.
    pub(super) async fn round(&self, answer: impl FnOnce(&str) -> Value) -> Page {
        self.round_at(CORP, answer).await
    }

    /// `round` through the provider configured as `id`.
    pub(super) async fn round_at(&self, id: &str, answer: impl FnOnce(&str) -> Value) -> Page {
        let start = self
            .agent
            .get(&self.app.url(&format!("/login/upstream/{id}?next=/account")))
            .await;
        assert_eq!(start.status, 303, "{}", start.body);
        let q = query(start.location.as_deref().unwrap());
        assert_eq!(q["code_challenge_method"], "S256");
        let own = format!("/login/upstream/{id}/callback");
        assert_eq!(q["redirect_uri"], self.app.url(&own));
        let nonce = q.get("nonce").cloned().unwrap_or_default();
        let body = answer(&nonce);
        let mut route = Route::json(&body);
        if body.get("error").is_some() {
            route.status = 400;
        }
        self.host.put("/token", route);
        self.agent
            .get(
                &self
                    .app
                    .url(&format!("{own}?state={}&code=c-1", q["state"])),
            )
            .await
    }

    /// A token response carrying `claims` as an ID token signed by the provider's key.
    pub(super) fn signed(&self, claims: &Value) -> Value {
        json!({
            "access_token": "upstream-at", "token_type": "Bearer",
            "id_token": sign(&self.pem, None, KID, claims),
        })
    }

    pub(super) async fn last_refusal(&self) -> String {
        let ev = self.app.audit_of("upstream.refused").await;
        ev.first().unwrap().details["reason"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

fn b64(v: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

async fn tampered_or_mis_issued_id_tokens_are_refused(backend: Backend) {
    let p = Provider::start(backend, UpstreamKind::Oidc, |_| {}).await;
    // Positive control first: a good token signs in (and provisions).
    let ok = p.round(|n| p.signed(&p.claims("u-1", n))).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    assert_eq!(ok.location.as_deref(), Some("/account"));
    let now = p.app.clock.now();
    let edited = |n: &str, k: &str, v: Value| {
        let mut c = p.claims("u-1", n);
        c[k] = v;
        c
    };
    let (other_key, _) = testkit::https::es256_key(KID);
    type Case<'a> = (&'a str, Box<dyn Fn(&str) -> Value + 'a>);
    let cases: Vec<Case<'_>> = vec![
        (
            "id_token_iss",
            Box::new(|n| p.signed(&edited(n, "iss", json!("https://evil.example")))),
        ),
        (
            "id_token_aud",
            Box::new(|n| p.signed(&edited(n, "aud", json!("someone-else")))),
        ),
        (
            "id_token_azp",
            Box::new(|n| p.signed(&edited(n, "aud", json!(["rp", "other"])))),
        ),
        (
            "id_token_nonce",
            Box::new(|n| p.signed(&edited(n, "nonce", json!(format!("{n}x"))))),
        ),
        (
            "id_token_expired",
            Box::new(|n| p.signed(&edited(n, "exp", json!(now - 120)))),
        ),
        (
            "id_token_iat",
            Box::new(|n| p.signed(&edited(n, "iat", json!(now + 600)))),
        ),
        (
            "id_token_signature",
            Box::new(|n| {
                json!({ "access_token": "a", "token_type": "Bearer",
                        "id_token": sign(&other_key, None, KID, &p.claims("u-1", n)) })
            }),
        ),
        (
            "id_token_malformed",
            Box::new(|n| {
                let jwt = format!(
                    "{}.{}.",
                    b64(&json!({ "alg": "none", "typ": "JWT" })),
                    b64(&p.claims("u-1", n))
                );
                json!({ "access_token": "a", "token_type": "Bearer", "id_token": jwt })
            }),
        ),
        (
            "no_id_token",
            Box::new(|_| json!({ "access_token": "a", "token_type": "Bearer" })),
        ),
        (
            "token_response",
            Box::new(|n| {
                let mut t = p.signed(&p.claims("u-1", n));
                t["token_type"] = json!("N_A");
                t
            }),
        ),
    ];
    for (reason, answer) in cases {
        let page = p.round(|n| answer(n)).await;
        assert_eq!(page.status, 403, "{reason}: {}", page.body);
        assert!(page.body.contains("could not be accepted"), "{reason}");
        assert_eq!(p.last_refusal().await, reason);
    }
    // An error answer of the token endpoint.
    let refused = p.round(|_| json!({ "error": "invalid_grant" })).await;
    assert_eq!(refused.status, 403);
    assert_eq!(p.last_refusal().await, "token_error");
    // Still the one user of the positive control.
    assert_eq!(p.app.state.store.list_users().await.unwrap().len(), 1);
}

async fn a_verified_email_links_but_never_to_a_privileged_account(backend: Backend) {
    let p = Provider::start(backend, UpstreamKind::Oidc, |u| {
        u.jit = false;
        u.link_by_email = true;
    })
    .await;
    let now = p.app.clock.now();
    let bob = p.app.user("bob", "local pass phrase 12", "user").await;
    let root = p.app.user("root", "local pass phrase 12", "admin").await;
    for (id, email) in [(&bob, "bob@corp.example"), (&root, "root@corp.example")] {
        p.app
            .state
            .store
            .set_user_email(id, Some(email), now)
            .await
            .unwrap();
    }
    let with_email = |sub: &str, n: &str, email: &str, verified: bool| {
        let mut c = p.claims(sub, n);
        c["email"] = json!(email);
        c["email_verified"] = json!(verified);
        p.signed(&c)
    };
    // An unverified address links nothing.
    let page = p
        .round(|n| with_email("s-bob", n, "bob@corp.example", false))
        .await;
    assert_eq!(page.status, 403);
    assert_eq!(p.last_refusal().await, "not_linked");
    // A privileged account is never linked by email.
    let page = p
        .round(|n| with_email("s-root", n, "ROOT@corp.example", true))
        .await;
    assert_eq!(page.status, 403);
    assert!(
        page.body.contains("never linked automatically"),
        "{}",
        page.body
    );
    assert_eq!(p.last_refusal().await, "privileged_email_link");
    assert!(
        p.app
            .state
            .store
            .federated_identities_of(&root)
            .await
            .unwrap()
            .is_empty()
    );
    // Positive control: the same rule links an ordinary account with a verified address.
    let page = p
        .round(|n| with_email("s-bob", n, "bob@corp.example", true))
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let links = p
        .app
        .state
        .store
        .federated_identities_of(&bob)
        .await
        .unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].subject, "s-bob");
    let linked = p.app.audit_of("upstream.linked").await;
    assert_eq!(linked[0].details["how"], "linked_by_email");
}

async fn roles_follow_the_upstream_groups_at_every_sign_in(backend: Backend) {
    let p = Provider::start(backend, UpstreamKind::Oidc, |u| {
        u.group_roles = [("authz-admins".to_owned(), "admin".to_owned())].into();
    })
    .await;
    let with_groups = |n: &str, groups: Value| {
        let mut c = p.claims("u-7", n);
        c["preferred_username"] = json!("grace");
        c["name"] = json!(if groups.as_array().is_some_and(|g| g.len() > 1) {
            "Grace Hopper"
        } else {
            "Rear Admiral Hopper"
        });
        c["groups"] = groups;
        p.signed(&c)
    };
    let page = p
        .round(|n| with_groups(n, json!(["staff", "authz-admins"])))
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let grace = p
        .app
        .state
        .store
        .get_user_by_username("grace")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        grace.roles,
        vec!["admin", "user"],
        "mapped from the group, beside `roles`"
    );
    assert_eq!(grace.display_name.as_deref(), Some("Grace Hopper"));
    // Removed from the group upstream: removed here at the next sign-in (audited).
    let page = p.round(|n| with_groups(n, json!(["staff"]))).await;
    assert_eq!(page.status, 303);
    let grace = p
        .app
        .state
        .store
        .get_user(&grace.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(grace.roles, vec!["user"]);
    // The name follows the provider's too.
    assert_eq!(grace.display_name.as_deref(), Some("Rear Admiral Hopper"));
    let changed = p.app.audit_of("user.roles_changed").await;
    assert_eq!(changed.first().unwrap().details["to"], json!(["user"]));
    // Positive control: back in the group, back in the role.
    p.round(|n| with_groups(n, json!("authz-admins"))).await;
    let grace = p
        .app
        .state
        .store
        .get_user(&grace.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(grace.roles, vec!["admin", "user"]);
}

async fn a_plain_oauth2_provider_signs_people_in(backend: Backend) {
    let p = Provider::start(backend, UpstreamKind::Oauth2, |u| {
        u.claims = ClaimMapping {
            subject: "id".into(),
            username: "login".into(),
            ..ClaimMapping::default()
        };
        u.scopes = Some(vec!["read:user".into()]);
    })
    .await;
    let token = json!({ "access_token": "gho_1", "token_type": "bearer", "scope": "read:user" });
    // A user document without the subject claim is refused.
    p.host
        .put("/user", Route::json(&json!({ "login": "octocat" })));
    let page = p.round(|_| token.clone()).await;
    assert_eq!(page.status, 403);
    assert_eq!(p.last_refusal().await, "no_subject");
    // Positive control: GitHub's numeric id is the subject, its login the username.
    p.host.put(
        "/user",
        Route::json(&json!({ "id": 583_231, "login": "octocat", "email": "octo@example.com" })),
    );
    let page = p.round(|_| token.clone()).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let octo = p
        .app
        .state
        .store
        .get_user_by_username("octocat")
        .await
        .unwrap()
        .unwrap();
    let links = p
        .app
        .state
        .store
        .federated_identities_of(&octo.id)
        .await
        .unwrap();
    assert_eq!(links[0].subject, "583231");
    assert_eq!(octo.email, None, "an address nobody verified is not taken");
}

/// Kim signs in through the provider in its session `up-session-1`.
async fn sign_in_kim(p: &Provider) {
    let page = p
        .round(|n| {
            let mut c = p.claims("u-9", n);
            c["sid"] = json!("up-session-1");
            c["preferred_username"] = json!("kim");
            p.signed(&c)
        })
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
}

const BCL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

async fn a_back_channel_logout_ends_the_upstream_sessions_once(backend: Backend) {
    let p = Provider::start(backend, UpstreamKind::Oidc, |_| {}).await;
    sign_in_kim(&p).await;
    let kim = p
        .app
        .state
        .store
        .get_user_by_username("kim")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(live_sessions(&p.app, &kim.id).await, 1);
    let now = p.app.clock.now();
    let logout = |claims: &Value, typ: Option<&str>| sign(&p.pem, typ, KID, claims);
    let good = json!({
        "iss": p.issuer(), "aud": "rp", "iat": now, "jti": "bcl-1", "sub": "u-9",
        "events": { BCL_EVENT: {} },
    });
    let post = |token: String| {
        let app = &p.app;
        async move {
            app.http
                .post(app.url(&format!("/login/upstream/{CORP}/backchannel-logout")))
                .form(&[("logout_token", token)])
                .send()
                .await
                .unwrap()
        }
    };
    // Refused: an ID token (nonce), another audience, no event, no subject, another typ.
    let edit = |k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        c["jti"] = json!(format!("bcl-{k}"));
        c
    };
    let mut no_subject = edit("sid", json!(null));
    no_subject.as_object_mut().unwrap().remove("sub");
    no_subject.as_object_mut().unwrap().remove("sid");
    for (token, reason) in [
        (logout(&edit("nonce", json!("n")), None), "nonce"),
        (logout(&edit("aud", json!("other")), None), "aud"),
        (logout(&edit("events", json!({})), None), "events"),
        (logout(&no_subject, None), "no_subject"),
        (logout(&good, Some("JWT")), "typ"),
    ] {
        let r = post(token).await;
        assert_eq!(r.status(), 400, "{reason}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request");
        assert_eq!(p.last_refusal().await, reason);
    }
    assert_eq!(
        live_sessions(&p.app, &kim.id).await,
        1,
        "nothing ended by a refused token"
    );
    // Positive control: the good token ends the session (and its signal goes out).
    let token = logout(&good, Some("logout+jwt"));
    assert_eq!(post(token.clone()).await.status(), 200);
    assert_eq!(live_sessions(&p.app, &kim.id).await, 0);
    let ended = p.app.audit_of("session.ended").await;
    assert!(
        ended
            .iter()
            .any(|e| e.details["via"] == "backchannel_logout")
    );
    // Once: the same token again is refused.
    sign_in_kim(&p).await;
    assert_eq!(post(token).await.status(), 400);
    assert_eq!(p.last_refusal().await, "replayed");
    assert_eq!(live_sessions(&p.app, &kim.id).await, 1);
    // A token naming only the provider's session finds the user of its last sign-in.
    let by_sid = json!({
        "iss": p.issuer(), "aud": "rp", "iat": now, "jti": "bcl-sid", "sid": "up-session-1",
        "events": { BCL_EVENT: {} },
    });
    assert_eq!(post(logout(&by_sid, None)).await.status(), 200);
    assert_eq!(live_sessions(&p.app, &kim.id).await, 0);
}

async fn the_cli_lists_providers_and_fails_on_one_that_cannot_be_used(backend: Backend) {
    let p = Provider::start(backend, UpstreamKind::Oidc, |_| {}).await;
    let file = p.app.dir.path().join("federation.toml");
    let toml = |extra: &str| {
        format!(
            "[cimd]\nextra_roots = {:?}\nallowed_private_hosts = [{:?}]\ntimeout_secs = 2\n\n\
             [[upstream]]\nid = \"corp\"\nkind = \"oidc\"\nname = \"Scripted\"\n\
             issuer = {:?}\nclient_id = \"rp\"\n{extra}",
            p.host.ca_pem.display().to_string(),
            p.host.host_port(),
            p.issuer()
        )
    };
    std::fs::write(&file, toml("")).unwrap();
    let path = file.display().to_string();
    let env = [("AUTHZ_UPSTREAM_CORP_CLIENT_SECRET", "rp-secret")];
    let args = ["--config", path.as_str(), "upstream", "list", "--json"];
    let (ok, out, err) = crate::cli::authz_with_env(&p.app, &env, &args, None);
    assert!(ok, "{out} {err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[0]["id"], "corp");
    assert_eq!(list[0]["status"], "ok");
    assert_eq!(
        list[0]["redirect_uri"],
        format!("{}/login/upstream/corp/callback", p.app.base)
    );
    // Without its secret the configuration is refused, naming the variable.
    let (ok, _, err) = crate::cli::authz(&p.app, &args, None);
    assert!(!ok);
    assert!(err.contains("AUTHZ_UPSTREAM_CORP_CLIENT_SECRET"), "{err}");
    // A provider whose metadata cannot be fetched: listed with its error, exit non-zero.
    let down = "\n[[upstream]]\nid = \"down\"\nname = \"Down\"\n\
                issuer = \"https://127.0.0.1:9\"\nclient_id = \"rp\"\nclient_secret = \"s\"\n";
    std::fs::write(&file, toml(down)).unwrap();
    let (ok, out, _) = crate::cli::authz_with_env(&p.app, &env, &args, None);
    assert!(!ok);
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[0]["status"], "ok");
    assert_eq!(list[1]["status"], "error");
    assert!(
        list[1]["error"]
            .as_str()
            .unwrap()
            .contains("could not be fetched")
    );
}
