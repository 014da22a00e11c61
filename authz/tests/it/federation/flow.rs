//! The whole federated sign-in with a real OpenID provider upstream (a second `authz` over
//! https): an MCP client's authorization request at the downstream, "Continue with Corp SSO",
//! sign-in and consent at the upstream, back through the callback, consent here, the code
//! redeemed; what is refused, each beside its positive control.

use authz::clock::Clock;
use authz::store::{AuthMethod, FederatedIdentity};
use testkit::agent::FormAgent;
use testkit::{both_backends, pkce};

use super::{CORP, Federated, upstream_link};
use crate::support::{Backend, CB, expect_token, jwt_claims, query};

both_backends!(
    continue_with_provisions_a_user_and_the_client_gets_its_token,
    without_jit_only_a_linked_identity_signs_in,
    state_is_single_use_and_bound_to_the_browser,
    a_wrong_or_missing_iss_in_the_response_is_refused,
    an_upstream_error_is_our_own_page,
    a_disabled_user_is_refused,
    only_upstream_hides_and_refuses_the_password_form,
    private_key_jwt_authenticates_us_at_the_provider,
);

const SCOPE: &str = "openid profile notes:read";

/// The downstream's public MCP client `app` and an authorization URL for it: (url, verifier).
async fn client_request(f: &Federated) -> (String, String) {
    f.app.code_client("app", AuthMethod::None, SCOPE).await;
    let (verifier, challenge) = pkce();
    let url = f
        .app
        .authorize_url("app", &challenge, &[("scope", SCOPE), ("nonce", "n-0")]);
    (url, verifier)
}

async fn continue_with_provisions_a_user_and_the_client_gets_its_token(backend: Backend) {
    let f = Federated::start(backend, |_| {}).await;
    f.upstream_user("alice", Some("alice@corp.example")).await;
    let (url, verifier) = client_request(&f).await;
    let login = f.agent.get(&url).await;
    assert_eq!(login.status, 200);
    assert!(
        login.body.contains("Continue with Corp SSO"),
        "{}",
        login.body
    );
    // Positive control of the page: the password form is there too.
    assert!(login.body.contains("action=\"/login\""));
    let back = f.continue_with(&login, "alice").await;
    let redirect = f.finish_downstream(back).await;
    assert!(redirect.starts_with(CB), "{redirect}");
    let q = query(&redirect);
    let token = expect_token(f.app.redeem("app", &q["code"], &verifier).await).await;
    let access = token["access_token"].as_str().unwrap();
    let user = f
        .app
        .state
        .store
        .get_user_by_username("alice")
        .await
        .unwrap()
        .expect("provisioned");
    assert_eq!(user.roles, vec!["user"]);
    // The upstream does not say the address is verified: it is not taken.
    assert_eq!(user.email, None);
    assert_eq!(jwt_claims(access)["sub"], user.id);
    let id = jwt_claims(token["id_token"].as_str().unwrap());
    assert_eq!(id["amr"], serde_json::json!(["fed"]));
    let links = f
        .app
        .state
        .store
        .federated_identities_of(&user.id)
        .await
        .unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].provider, CORP);
    let kinds = f.app.audit_kinds().await;
    for k in [
        "upstream.linked",
        "upstream.signed_in",
        "user.created",
        "login.succeeded",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} in {kinds:?}");
    }
    // A second sign-in (another browser) finds the same user: nobody new.
    let again = FormAgent::trusting(&f.up.dir.path().join("tls.pem"));
    let f2 = Federated { agent: again, ..f };
    let login = f2.agent.get(&url).await;
    let back = f2.continue_with(&login, "alice").await;
    f2.finish_downstream(back).await;
    assert_eq!(f2.app.state.store.list_users().await.unwrap().len(), 1);
}

async fn without_jit_only_a_linked_identity_signs_in(backend: Backend) {
    let f = Federated::start(backend, |c| c.upstream[0].jit = false).await;
    let upstream_id = f.upstream_user("bob", None).await;
    let local = f.app.user("bob-here", "local pass phrase 12", "user").await;
    let (url, _) = client_request(&f).await;
    let login = f.agent.get(&url).await;
    let refused = f.continue_with(&login, "bob").await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.body.contains("No account here is linked"),
        "{}",
        refused.body
    );
    // Never linked by name or created: the local account stays alone.
    assert!(
        f.app
            .state
            .store
            .federated_identities_of(&local)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(f.app.state.store.list_users().await.unwrap().len(), 1);
    // Positive control: linked (as the account page will), the same identity signs in.
    let link = FederatedIdentity {
        provider: CORP.into(),
        subject: upstream_id,
        user_id: local.clone(),
        email: None,
        created_at: f.app.clock.now(),
        last_login_at: None,
    };
    f.app
        .state
        .store
        .add_federated_identity(&link)
        .await
        .unwrap();
    let login = f.agent.get(&url).await;
    let back = f.continue_with(&login, "bob").await;
    let redirect = f.finish_downstream(back).await;
    assert!(redirect.starts_with(CB), "{redirect}");
}

async fn state_is_single_use_and_bound_to_the_browser(backend: Backend) {
    let f = Federated::start(backend, |_| {}).await;
    f.upstream_user("carol", None).await;
    let (url, _) = client_request(&f).await;
    // The callback taken to another browser (an attacker's login CSRF, a leaked URL): refused,
    // and the round trip is spent.
    let login = f.agent.get(&url).await;
    let callback = f.to_provider_and_back(&login, "carol").await;
    let other = FormAgent::new();
    let stolen = other.get(&callback).await;
    assert_eq!(stolen.status, 403);
    assert!(stolen.body.contains("expired or was already used"));
    let own = f.agent.get(&callback).await;
    assert_eq!(own.status, 403, "spent by the first use");
    // Positive control: a fresh round trip completes, and its callback works once.
    let login = f.agent.get(&url).await;
    let callback = f.to_provider_and_back(&login, "carol").await;
    let ok = f.agent.get(&callback).await;
    assert_eq!(ok.status, 303, "{}", ok.body);
    let replay = f.agent.get(&callback).await;
    assert_eq!(replay.status, 403);
    let refused = f.app.audit_of("upstream.refused").await;
    assert!(refused.iter().all(|e| e.details["reason"] == "state"));
    assert_eq!(refused.len(), 3);
}

async fn a_wrong_or_missing_iss_in_the_response_is_refused(backend: Backend) {
    let f = Federated::start(backend, |_| {}).await;
    f.upstream_user("dave", None).await;
    let (url, _) = client_request(&f).await;
    for (from, to) in [
        ("iss=", "iss=https%3A%2F%2Fevil.example&was="),
        ("iss=", "was="),
    ] {
        let login = f.agent.get(&url).await;
        let callback = f.to_provider_and_back(&login, "dave").await;
        assert!(
            callback.contains("iss="),
            "the upstream sends iss (RFC 9207)"
        );
        let refused = f.agent.get(&callback.replacen(from, to, 1)).await;
        assert_eq!(refused.status, 403, "{to}");
    }
    let reasons: Vec<_> = f
        .app
        .audit_of("upstream.refused")
        .await
        .into_iter()
        .map(|e| e.details["reason"].as_str().unwrap().to_owned())
        .collect();
    assert!(reasons.contains(&"response_iss".to_owned()), "{reasons:?}");
    assert!(
        reasons.contains(&"response_iss_missing".to_owned()),
        "{reasons:?}"
    );
    // Positive control: the untouched response.
    let login = f.agent.get(&url).await;
    let back = f.continue_with(&login, "dave").await;
    assert_eq!(back.status, 303);
}

async fn an_upstream_error_is_our_own_page(backend: Backend) {
    let f = Federated::start(backend, |_| {}).await;
    let (url, _) = client_request(&f).await;
    let login = f.agent.get(&url).await;
    let start = f
        .agent
        .get(&f.app.url(&upstream_link(&login.body).unwrap()))
        .await;
    let q = query(start.location.as_deref().unwrap());
    let callback = f.app.url(&format!(
        "/login/upstream/{CORP}/callback?state={}&iss={}&error=server_error&\
         error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        q["state"],
        urlencoding(&f.up.base)
    ));
    let page = f.agent.get(&callback).await;
    assert_eq!(page.status, 403);
    assert!(!page.body.contains("<script>alert"), "nothing reflected");
    assert!(!page.body.contains("server_error"), "nothing reflected");
    assert!(page.body.contains("Start signing in again"));
    let ev = f.app.audit_of("upstream.refused").await;
    assert_eq!(ev[0].details["reason"], "error_response");
}

fn urlencoding(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn a_disabled_user_is_refused(backend: Backend) {
    let f = Federated::start(backend, |_| {}).await;
    f.upstream_user("erin", None).await;
    let (url, _) = client_request(&f).await;
    let login = f.agent.get(&url).await;
    let ok = f.continue_with(&login, "erin").await;
    assert_eq!(ok.status, 303, "positive control");
    f.app.set_disabled("test", "erin", true).await;
    let fresh = FormAgent::trusting(&f.up.dir.path().join("tls.pem"));
    let f = Federated { agent: fresh, ..f };
    let login = f.agent.get(&url).await;
    let refused = f.continue_with(&login, "erin").await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("disabled"));
}

async fn only_upstream_hides_and_refuses_the_password_form(backend: Backend) {
    let f = Federated::start(backend, |c| c.federation.only = Some(CORP.into())).await;
    f.app.user("frank", "local pass phrase 12", "user").await;
    let (url, _) = client_request(&f).await;
    let login = f.agent.get(&url).await;
    assert!(login.body.contains("Continue with Corp SSO"));
    assert!(
        !login.body.contains("action=\"/login\""),
        "no password form"
    );
    // A password posted anyway is not checked.
    // (With no form on the sign-in page there is no CSRF field to copy: the browser's token is
    // made as the server makes it, from its CSRF cookie.)
    let csrf_cookie = f.agent.cookie("authz_csrf").expect("a CSRF cookie");
    let csrf = {
        use base64::Engine;
        let mac = f.app.state.master.mac("csrf", csrf_cookie.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac)
    };
    let mut fields = vec![("csrf".to_owned(), csrf)];
    let link = upstream_link(&login.body).unwrap();
    let request = query(&format!("http://x{link}"))["request"].clone();
    fields.push(("request".into(), request));
    fields.push(("username".into(), "frank".into()));
    fields.push(("password".into(), "local pass phrase 12".into()));
    let posted = f.agent.post_form(&f.app.url("/login"), &fields).await;
    assert_eq!(posted.status, 200);
    assert!(
        posted.body.contains("Passwords are not used"),
        "{}",
        posted.body
    );
    assert!(f.app.audit_of("login.succeeded").await.is_empty());
    // Positive control: the same server without `only` takes the password.
    let open = Federated::start(backend, |_| {}).await;
    open.app.user("frank", "local pass phrase 12", "user").await;
    let (url, _) = client_request(&open).await;
    let ok = open
        .agent
        .sign_in(
            &open.app.base,
            &url,
            "frank",
            "local pass phrase 12",
            "approve",
        )
        .await;
    assert!(ok.is_ok());
}

async fn private_key_jwt_authenticates_us_at_the_provider(backend: Backend) {
    let f = Federated::start_as(backend, true, |_| {}).await;
    f.upstream_user("gus", None).await;
    let (url, _) = client_request(&f).await;
    let login = f.agent.get(&url).await;
    let back = f.continue_with(&login, "gus").await;
    let redirect = f.finish_downstream(back).await;
    assert!(redirect.starts_with(CB), "{redirect}");
    // The provider authenticated us by the assertion (no secret exists for this client).
    let audited = f.up.audit_of("token.issued").await;
    assert!(
        audited
            .iter()
            .any(|e| e.client_id.as_deref() == Some("downstream"))
    );
    // The report shows the public key to register, never the private one.
    let report = authz::federation::report(f.app.state.federation(), 0)
        .await
        .unwrap();
    let jwk = report[0].client_jwk.as_ref().expect("the public JWK");
    assert_eq!(jwk["kty"], "EC");
    assert!(jwk.get("d").is_none());
}
