//! Regression tests of the adversarial review of issue 26's federation (each failed on the
//! code before its fix; positive controls beside):
//! - F1: a link round trip begun before a remedy (password reset, disabling) no longer links
//!   after it;
//! - F2: an address one provider asserted is not trusted by another provider's email linking;
//! - F3: `federation.only` closes the password grant too;
//! - F4: an administrator's unlink of a provisioned user's last identity revokes the API keys
//!   made in its sessions;
//! - F5: usernames of provisioned users are lower case (no `Admin` beside `admin`).

use authz::config::upstream::{Upstream, UpstreamKind};
use authz::store::{AuthMethod, GrantType};
use serde_json::json;
use shared::secret::ClientSecret;
use testkit::agent::FormAgent;
use testkit::both_backends;

use super::scripted::Provider;
use super::{CORP, Federated, UP_PASSWORD};
use crate::support::{Backend, console_sign_in, expect_error, expect_token, submit_form};

both_backends!(
    f1_a_link_begun_before_a_remedy_does_not_link_after_it,
    f2_an_address_another_provider_asserted_is_not_linked_by_email,
    f3_only_upstream_closes_the_password_grant,
    f4_an_admin_unlink_of_the_last_identity_revokes_its_api_keys,
    f5_provisioned_usernames_are_lower_case,
    f6_round_trips_are_begun_within_the_form_budget,
);

const PW: &str = "local pass phrase 12";

/// Begin a link of the signed-in `agent`'s account from the account page: the provider's
/// authorization URL.
async fn begin_link(f: &Federated) -> String {
    let go = submit_form(
        &f.app,
        &f.agent,
        "/account/identities",
        "/account/identities/link",
        &[],
    )
    .await;
    assert_eq!(go.status, 303, "{}", go.body);
    go.location.unwrap()
}

async fn f1_a_link_begun_before_a_remedy_does_not_link_after_it(backend: Backend) {
    let f = Federated::start(backend, |c| c.upstream[0].jit = false).await;
    let victim = f.app.user("victim", PW, "user").await;
    f.upstream_user("attacker-up", None).await;
    // The attacker holds the victim's password and a fresh session: a link begins...
    console_sign_in(&f.app, &f.agent, "victim", PW).await;
    let at_upstream = begin_link(&f).await;
    // ...the victim's administrator resets the password (the takeover's remedy)...
    authz::identity::admin::set_password(
        f.app.state.identity(),
        "test",
        "victim",
        &shared::secret::Password::new("a new pass phrase 99"),
    )
    .await
    .unwrap();
    // ...and the attacker finishes the round trip: no link.
    let callback = f
        .agent
        .sign_in(
            &f.up.base,
            &at_upstream,
            "attacker-up",
            UP_PASSWORD,
            "approve",
        )
        .await
        .unwrap();
    let back = f.agent.get(&callback).await;
    assert_ne!(
        back.location.as_deref(),
        Some("/account/identities?done=linked")
    );
    let links = f
        .app
        .state
        .store
        .federated_identities_of(&victim)
        .await
        .unwrap();
    assert!(links.is_empty(), "linked after the reset: {links:?}");
    // Disabling likewise: begun before, not linked after (not even once re-enabled).
    console_sign_in(&f.app, &f.agent, "victim", "a new pass phrase 99").await;
    let at_upstream = begin_link(&f).await;
    f.app.set_disabled("test", "victim", true).await;
    let callback = f
        .agent
        .sign_in(
            &f.up.base,
            &at_upstream,
            "attacker-up",
            UP_PASSWORD,
            "approve",
        )
        .await
        .unwrap();
    f.agent.get(&callback).await;
    f.app.set_disabled("test", "victim", false).await;
    assert!(
        f.app
            .state
            .store
            .federated_identities_of(&victim)
            .await
            .unwrap()
            .is_empty()
    );
    // Positive control: a link with no remedy in between is made.
    console_sign_in(&f.app, &f.agent, "victim", "a new pass phrase 99").await;
    let at_upstream = begin_link(&f).await;
    let callback = f
        .agent
        .sign_in(
            &f.up.base,
            &at_upstream,
            "attacker-up",
            UP_PASSWORD,
            "approve",
        )
        .await
        .unwrap();
    let back = f.agent.get(&callback).await;
    assert_eq!(
        back.location.as_deref(),
        Some("/account/identities?done=linked")
    );
    assert_eq!(
        f.app
            .state
            .store
            .federated_identities_of(&victim)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn f2_an_address_another_provider_asserted_is_not_linked_by_email(backend: Backend) {
    let p = Provider::start_with(
        backend,
        UpstreamKind::Oidc,
        |u| u.link_by_email = true,
        |c| {
            // A second provider for another population (same test host, another client).
            let partner = Upstream {
                id: "partner".into(),
                name: "Partner".into(),
                client_id: "rp2".into(),
                client_secret: Some(ClientSecret::new("rp2-secret")),
                ..c.upstream[0].clone()
            };
            c.upstream.push(Upstream {
                link_by_email: false,
                ..partner
            });
        },
    )
    .await;
    let with_email = |sub: &str, n: &str, name: &str| {
        let mut c = p.claims(sub, n);
        c["aud"] = json!(if sub.starts_with("partner") {
            "rp2"
        } else {
            "rp"
        });
        c["preferred_username"] = json!(name);
        c["email"] = json!("victoria@corp.example");
        c["email_verified"] = json!(true);
        p.signed(&c)
    };
    // Mallory, at the partner, claims Victoria's address: provisioned with it.
    let page = p
        .round_at("partner", |n| with_email("partner-mallory", n, "mallory"))
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let mallory = p
        .app
        .state
        .store
        .get_user_by_username("mallory")
        .await
        .unwrap()
        .unwrap();
    // Victoria's first sign-in at corp does not land in Mallory's account.
    let page = p
        .round_at(CORP, |n| with_email("corp-victoria", n, "victoria"))
        .await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(
        page.body.contains("not linked automatically"),
        "{}",
        page.body
    );
    let link = p
        .app
        .state
        .store
        .federated_identity(CORP, "corp-victoria")
        .await
        .unwrap();
    assert!(
        link.is_none_or(|l| l.user_id != mallory.id),
        "linked into the account the partner's user holds"
    );
    // Positive control: an address an administrator set links (a local account, no links).
    let wendy = p.app.user("wendy", PW, "user").await;
    let now = authz::clock::Clock::now(&*p.app.clock);
    p.app
        .state
        .store
        .set_user_email(&wendy, Some("wendy@corp.example"), now)
        .await
        .unwrap();
    let page = p
        .round_at(CORP, |n| {
            let mut c = p.claims("corp-wendy", n);
            c["email"] = json!("wendy@corp.example");
            c["email_verified"] = json!(true);
            p.signed(&c)
        })
        .await;
    assert_eq!(page.status, 303);
    let link = p
        .app
        .state
        .store
        .federated_identity(CORP, "corp-wendy")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(link.user_id, wendy);
}

async fn f3_only_upstream_closes_the_password_grant(backend: Backend) {
    for only in [false, true] {
        let f = Federated::start(backend, |c| {
            if only {
                c.federation.only = Some(CORP.into());
            }
        })
        .await;
        f.app.user("pat", PW, "user").await;
        f.app
            .client(
                "cli",
                AuthMethod::None,
                &[GrantType::Password],
                "notes:read",
                &[crate::support::MCP],
            )
            .await;
        let form = [
            ("grant_type", "password"),
            ("client_id", "cli"),
            ("username", "pat"),
            ("password", PW),
            ("scope", "notes:read"),
        ];
        let r = f.app.token(&form, None).await;
        if only {
            expect_error(r, 400, "unsupported_grant_type").await;
        } else {
            expect_token(r).await; // the positive control
        }
    }
}

async fn f4_an_admin_unlink_of_the_last_identity_revokes_its_api_keys(backend: Backend) {
    let f = Federated::start(backend, |_| {}).await;
    f.upstream_user("quinn", None).await;
    let login = f
        .agent
        .get(&f.app.url("/account/login?next=/account/api-keys"))
        .await;
    let back = f.continue_with(&login, "quinn").await;
    assert_eq!(back.status, 303, "{}", back.body);
    let extra = [("name", "bot"), ("days", "30"), ("scope", "notes:read")];
    let created = submit_form(
        &f.app,
        &f.agent,
        "/account/api-keys",
        "/account/api-keys",
        &extra,
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let quinn = f
        .app
        .state
        .store
        .get_user_by_username("quinn")
        .await
        .unwrap()
        .unwrap();
    let keys = f
        .app
        .state
        .store
        .list_clients_owned_by(&quinn.id)
        .await
        .unwrap();
    let grab = |marker: &str| {
        let start = created.body.find(marker).unwrap() + marker.len();
        created.body[start..]
            .split('<')
            .next()
            .unwrap()
            .trim()
            .to_owned()
    };
    let (id, secret) = (grab("id=\"new-key-id\">"), grab("id=\"new-key-secret\">"));
    assert_eq!(keys[0].id, id);
    let form = [
        ("grant_type", "client_credentials"),
        ("scope", "notes:read"),
    ];
    expect_token(f.app.token(&form, Some((&id, &secret))).await).await; // positive control
    f.app.user("root", PW, "admin").await;
    let admin = FormAgent::new();
    console_sign_in(&f.app, &admin, "root", PW).await;
    let page = format!("/admin/users/{}", quinn.id);
    let done = submit_form(
        &f.app,
        &admin,
        &page,
        &format!("{page}/identities/unlink"),
        &[],
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let r = f.app.token(&form, Some((&id, &secret))).await;
    assert_ne!(
        r.status(),
        200,
        "the API key outlived the unlink of the account's only way in"
    );
}

async fn f5_provisioned_usernames_are_lower_case(backend: Backend) {
    let p = Provider::start(backend, UpstreamKind::Oidc, |_| {}).await;
    p.app.user("admin", PW, "admin").await;
    let page = p
        .round(|n| {
            let mut c = p.claims("u-x", n);
            c["preferred_username"] = json!("Admin");
            p.signed(&c)
        })
        .await;
    assert_eq!(page.status, 303);
    let link = p
        .app
        .state
        .store
        .federated_identity(CORP, "u-x")
        .await
        .unwrap()
        .unwrap();
    let user = p
        .app
        .state
        .store
        .get_user(&link.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.username, "admin-corp", "not a look-alike of admin");
}

/// Final review: every `GET /login/upstream/{id}` stores a round trip (a database row) for an
/// anonymous caller; it spends the per-address budget of the sign-in forms like `POST /login`,
/// so one address cannot fill the table.
async fn f6_round_trips_are_begun_within_the_form_budget(backend: Backend) {
    let p = Provider::start_with(
        backend,
        UpstreamKind::Oidc,
        |_| {},
        |c| {
            c.rate_limits.login = 3;
        },
    )
    .await;
    let url = p.app.url(&format!("/login/upstream/{CORP}?next=/account"));
    for _ in 0..3 {
        assert_eq!(p.agent.get(&url).await.status, 303, "within the budget");
    }
    assert_eq!(p.agent.get(&url).await.status, 429, "past the budget");
    assert_eq!(
        p.app
            .sql_count("SELECT count(*) FROM upstream_logins")
            .await,
        3
    );
}
