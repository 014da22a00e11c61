//! Browser and grant steps the round-3 tests share, with or without the `passkeys` feature:
//! submitting a page's form, rp's code flow in a signed-in browser, and refreshing.

use testkit::agent::{FormAgent, Page, hidden_inputs};

use crate::support::{CB, TestApp, expect_error, expect_token, pkce, query};

/// Submit `page`'s form `action` with its hidden fields and `extra`.
pub(super) async fn submit(
    app: &TestApp,
    agent: &FormAgent,
    page: &Page,
    action: &str,
    extra: &[(&str, &str)],
) -> Page {
    assert!(
        page.body.contains(&format!("action=\"{action}\"")),
        "a form for {action}: {} {}",
        page.status,
        page.body
    );
    let mut fields = hidden_inputs(&page.body);
    fields.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    agent.post_form(&app.url(action), &fields).await
}

/// The code flow of `rp` with `offline_access` in the signed-in browser `agent` (consenting
/// when asked): the refresh token.
pub(super) async fn grant_through_rp(app: &TestApp, agent: &FormAgent) -> String {
    let (verifier, challenge) = pkce();
    let url = app.authorize_url(
        "rp",
        &challenge,
        &[("scope", "openid notes:read offline_access")],
    );
    let mut page: Page = agent.get(&url).await;
    for _ in 0..5 {
        match page.status {
            302 | 303 => {
                let loc = page.location.clone().unwrap();
                if loc.starts_with(CB) {
                    let code = &query(&loc)["code"];
                    let t = expect_token(app.redeem("rp", code, verifier.as_str()).await).await;
                    let rt = t["refresh_token"].as_str().expect("a refresh token");
                    return rt.to_owned();
                }
                page = agent.get(&app.url(&loc)).await;
            }
            200 if page.body.contains("action=\"/consent\"") => {
                page = submit(app, agent, &page, "/consent", &[("decision", "approve")]).await;
            }
            _ => panic!("flow stopped at {} {}", page.status, page.body),
        }
    }
    panic!("too many steps")
}

/// Refresh `rt` at `rp`: the next refresh token, or `None` when refused with `invalid_grant`.
pub(super) async fn refreshed(app: &TestApp, rt: &str) -> Option<String> {
    let r = app.refresh("rp", rt, &[]).await;
    if r.status() == 200 {
        let t = expect_token(r).await;
        return Some(t["refresh_token"].as_str().unwrap().to_owned());
    }
    expect_error(r, 400, "invalid_grant").await;
    None
}
