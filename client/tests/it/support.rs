//! Both servers for one test come from `testkit::system::System`; the browser of a sign-in.

pub use testkit::Backend;
pub use testkit::system::System;

/// The "browser" of a sign-in: testuser on the real login and consent pages of `authz_url`
/// for `url`, then the redirect followed to the client's loopback listener; the listener's
/// page. Spawned, so the client can wait for the redirect meanwhile.
pub fn browser_approves(authz_url: &str, url: &str) -> tokio::task::JoinHandle<String> {
    let (base, url) = (authz_url.to_owned(), url.to_owned());
    tokio::spawn(async move {
        let loc = testkit::agent::FormAgent::new()
            .sign_in(&base, &url, "testuser", "TestPass123!", "approve")
            .await
            .unwrap();
        assert!(
            loc.starts_with("http://127.0.0.1:") && loc.contains("/callback?"),
            "{loc}"
        );
        reqwest::get(&loc).await.unwrap().text().await.unwrap()
    })
}
