//! Steps shared by the real-browser tests (`console`, `passkeys`): each waits for the page to
//! get where the test expects (testkit's `wait_*`) and panics with the page's source if it
//! never does. A form is sent with [`submit`], which returns only once the **next** page has
//! loaded, so that a following `goto` cannot cancel the form's request halfway.

use testkit::webdriver::{Browser, Element};

/// The first element matching `css`, once the page has one.
pub async fn wait_find(b: &Browser, css: &str) -> Element {
    b.wait_find(css).await.unwrap_or_else(|e| panic!("{e}"))
}

/// Wait until the page's heading is `want`.
pub async fn wait_h1(b: &Browser, want: &str) {
    b.wait_heading(want).await.unwrap_or_else(|e| panic!("{e}"));
}

/// The page's heading.
pub async fn h1(b: &Browser) -> String {
    b.text(&wait_find(b, "h1").await).await.unwrap()
}

/// Type `text` into the field `css`.
pub async fn fill(b: &Browser, css: &str, text: &str) {
    b.send_keys(&wait_find(b, css).await, text).await.unwrap();
}

/// Click `css` without waiting for a new page (a button that runs the page's script).
pub async fn click(b: &Browser, css: &str) {
    b.click(&wait_find(b, css).await).await.unwrap();
}

/// Click the form button `css` and wait for the page the form leads to.
pub async fn submit(b: &Browser, css: &str) {
    b.click_and_wait(css)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Sign out with the console's button, and wait until the server said so.
pub async fn sign_out(b: &Browser) {
    submit(b, ".signout button").await;
    wait_h1(b, "You have been signed out").await;
}
