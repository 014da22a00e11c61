//! A minimal W3C WebDriver client for end-to-end tests in a real browser: Debian's headless
//! Chromium driven through `chromedriver` (`apt-get install chromium chromium-driver`).
//!
//! [`Browser::start`] runs a private `chromedriver` on a free loopback port and opens one session;
//! the methods cover what a login-page test needs (navigate, find by CSS selector, type, click,
//! read the URL, title, text and source, run scripts, wait for a redirect, an element, a heading or the next page) and screenshots for
//! looking at pages afterwards. Every error is a `String` that names the
//! command and carries WebDriver's own error JSON.
//!
//! Environment: `CHROMEDRIVER` overrides the driver (else `chromedriver` on `PATH`, else
//! `/usr/bin/chromedriver`), `CHROME_BIN` the browser (else `/usr/bin/chromium`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), String> {
//! let browser = testkit::webdriver::Browser::start().await?;
//! browser.goto("http://127.0.0.1:8080/login").await?;
//! let user = browser.find("input[name=username]").await?;
//! browser.send_keys(&user, "alice").await?;
//! browser.click(&browser.find("button[type=submit]").await?).await?;
//! let url = browser
//!     .wait_for_url(|u| u.contains("code="), std::time::Duration::from_secs(5))
//!     .await?;
//! # let _ = url;
//! browser.quit().await;
//! # Ok(())
//! # }
//! ```

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The key under which W3C WebDriver returns an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long `chromedriver` gets to answer `GET /status` with `ready: true`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest any one WebDriver command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the `wait_*` helpers wait for a page to get where a test expects (generous: CI
/// runs the browser tests beside the rest of the suite on two cores).
pub const WAIT: Duration = Duration::from_secs(20);
const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
const DEFAULT_CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A headless Chromium session behind its own `chromedriver`.
///
/// Call [`Browser::quit`] at the end of a test. If the `Browser` is dropped instead (a failed
/// assertion, an early return), `Drop` still closes the session with a short blocking request so
/// that no Chromium is left running, and `chromedriver` is killed (`kill_on_drop`). Both run with
/// `TMPDIR` set to a directory of their own, removed at the end, so that the profile and sockets
/// they leave behind go with it.
#[derive(Debug)]
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>`
    base: String,
    port: u16,
    /// `None` once the session has been deleted.
    session: Option<String>,
    driver: tokio::process::Child,
    /// `TMPDIR` of `chromedriver` and Chromium.
    tmp: PathBuf,
}

/// A reference to an element of the current page, as returned by [`Browser::find`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element {
    id: String,
}

impl Element {
    /// WebDriver's id for this element.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl Browser {
    /// Start `chromedriver` on a free port and open a headless Chromium session.
    pub async fn start() -> Result<Browser, String> {
        let driver_path = find_chromedriver()?;
        let chrome = std::env::var("CHROME_BIN").unwrap_or_else(|_| DEFAULT_CHROMIUM.to_owned());
        if !Path::new(&chrome).exists() {
            return Err(format!(
                "Chromium not found at {chrome} (set CHROME_BIN, or \
                 `apt-get install chromium chromium-driver`)"
            ));
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(COMMAND_TIMEOUT)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let port = free_port()?;
        let tmp =
            std::env::temp_dir().join(format!("testkit-chromium-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&tmp)
            .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
        let spawned = tokio::process::Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .env("TMPDIR", &tmp)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn();
        let driver = match spawned {
            Ok(driver) => driver,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(format!("cannot run {}: {e}", driver_path.display()));
            }
        };
        // From here on, an early return drops `browser`, which stops `chromedriver` and removes
        // `tmp`.
        let mut browser = Browser {
            http,
            base: format!("http://127.0.0.1:{port}"),
            port,
            session: None,
            driver,
            tmp,
        };

        // Wait for `GET /status` to say ready.
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = browser.driver.try_wait() {
                return Err(format!(
                    "{} exited during startup ({status})",
                    driver_path.display()
                ));
            }
            let status_url = format!("{}/status", browser.base);
            let ready = match browser.http.get(status_url).send().await {
                Ok(resp) => resp
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|v| v["value"]["ready"].as_bool())
                    .unwrap_or(false),
                Err(_) => false,
            };
            if ready {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{} was not ready on port {port} after {STARTUP_TIMEOUT:?}",
                    driver_path.display()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": chrome,
                        "args": [
                            "--headless=new",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-dev-shm-usage",
                            "--window-size=1200,900",
                        ],
                    },
                },
            },
        });
        let value = browser
            .command(reqwest::Method::POST, "/session", Some(caps))
            .await?;
        let id = value["sessionId"]
            .as_str()
            .ok_or_else(|| format!("POST /session: no sessionId in {value}"))?;
        browser.session = Some(id.to_owned());
        Ok(browser)
    }

    /// Navigate to `url` and wait for the page to load.
    pub async fn goto(&self, url: &str) -> Result<(), String> {
        self.session_command(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await
            .map(drop)
    }

    /// The URL of the current page.
    pub async fn current_url(&self) -> Result<String, String> {
        let value = self
            .session_command(reqwest::Method::GET, "/url", None)
            .await?;
        as_string(value, "GET /url")
    }

    /// The first element matching the CSS selector `css`.
    pub async fn find(&self, css: &str) -> Result<Element, String> {
        let body = json!({ "using": "css selector", "value": css });
        let value = self
            .session_command(reqwest::Method::POST, "/element", Some(body))
            .await
            .map_err(|e| format!("find {css:?}: {e}"))?;
        let id = value[ELEMENT_KEY]
            .as_str()
            .ok_or_else(|| format!("find {css:?}: no element reference in {value}"))?;
        Ok(Element { id: id.to_owned() })
    }

    /// All elements matching the CSS selector `css`, in document order (empty if none match).
    pub async fn find_all(&self, css: &str) -> Result<Vec<Element>, String> {
        let body = json!({ "using": "css selector", "value": css });
        let value = self
            .session_command(reqwest::Method::POST, "/elements", Some(body))
            .await
            .map_err(|e| format!("find_all {css:?}: {e}"))?;
        let Value::Array(items) = value else {
            return Err(format!("find_all {css:?}: expected an array, got {value}"));
        };
        items
            .iter()
            .map(|item| {
                item[ELEMENT_KEY]
                    .as_str()
                    .map(|id| Element { id: id.to_owned() })
                    .ok_or_else(|| format!("find_all {css:?}: no element reference in {item}"))
            })
            .collect()
    }

    /// The rendered text of `el` (as `innerText`: visible text only).
    pub async fn text(&self, el: &Element) -> Result<String, String> {
        let path = format!("/element/{}/text", el.id);
        let value = self
            .session_command(reqwest::Method::GET, &path, None)
            .await?;
        as_string(value, &format!("GET {path}"))
    }

    /// Type `text` into `el`.
    pub async fn send_keys(&self, el: &Element, text: &str) -> Result<(), String> {
        let path = format!("/element/{}/value", el.id);
        self.session_command(reqwest::Method::POST, &path, Some(json!({ "text": text })))
            .await
            .map(drop)
    }

    /// Click `el`.
    pub async fn click(&self, el: &Element) -> Result<(), String> {
        let path = format!("/element/{}/click", el.id);
        self.session_command(reqwest::Method::POST, &path, Some(json!({})))
            .await
            .map(drop)
    }

    /// The current page's source, as the browser serializes its DOM.
    pub async fn page_source(&self) -> Result<String, String> {
        let value = self
            .session_command(reqwest::Method::GET, "/source", None)
            .await?;
        as_string(value, "GET /source")
    }

    /// The current page's title.
    pub async fn title(&self) -> Result<String, String> {
        let value = self
            .session_command(reqwest::Method::GET, "/title", None)
            .await?;
        as_string(value, "GET /title")
    }

    /// Run `script` in the page as an async function body (W3C WebDriver §13.2.2 Execute Async
    /// Script): `arguments[0..n]` are `args`, and the script calls `arguments[n]` (the last
    /// argument) with its result, which is returned as JSON. Script errors are `Err`.
    pub async fn execute_async(&self, script: &str, args: Vec<Value>) -> Result<Value, String> {
        let body = json!({ "script": script, "args": args });
        self.session_command(reqwest::Method::POST, "/execute/async", Some(body))
            .await
            .map_err(|e| format!("execute_async: {e}"))
    }

    /// Run `script` in the page as a function body (W3C WebDriver §13.2.1 Execute Script):
    /// `arguments[0..n]` are `args`, and what the script `return`s comes back as JSON. Script
    /// errors are `Err`.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value, String> {
        let body = json!({ "script": script, "args": args });
        self.session_command(reqwest::Method::POST, "/execute/sync", Some(body))
            .await
            .map_err(|e| format!("execute: {e}"))
    }

    /// Add a virtual authenticator (W3C WebAuthn Level 2 §11.3 "Add Virtual Authenticator"):
    /// a CTAP2 platform authenticator with discoverable credentials and user verification
    /// that always succeeds, so passkey ceremonies run without a person. Returns its id.
    pub async fn add_virtual_authenticator(&self) -> Result<String, String> {
        let body = json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserConsenting": true,
            "isUserVerified": true,
        });
        let value = self
            .session_command(reqwest::Method::POST, "/webauthn/authenticator", Some(body))
            .await?;
        as_string(value, "POST /webauthn/authenticator")
    }

    /// The credentials a virtual authenticator holds (W3C WebAuthn §11.7).
    pub async fn virtual_credentials(&self, authenticator: &str) -> Result<Value, String> {
        self.session_command(
            reqwest::Method::GET,
            &format!("/webauthn/authenticator/{authenticator}/credentials"),
            None,
        )
        .await
    }

    /// Resize the browser window to `width` × `height` CSS pixels (the outer size, including
    /// what little frame headless Chromium has).
    pub async fn set_window_size(&self, width: u32, height: u32) -> Result<(), String> {
        let body = json!({ "width": width, "height": height });
        self.session_command(reqwest::Method::POST, "/window/rect", Some(body))
            .await
            .map(drop)
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Result<Vec<u8>, String> {
        use base64::Engine as _;
        let value = self
            .session_command(reqwest::Method::GET, "/screenshot", None)
            .await?;
        let encoded = as_string(value, "GET /screenshot")?;
        base64::engine::general_purpose::STANDARD
            .decode(encoded.as_bytes())
            .map_err(|e| format!("GET /screenshot: not base64: {e}"))
    }

    /// A PNG of the whole page: the window is made as tall as the document for the screenshot,
    /// then given its size back (also when the screenshot fails).
    pub async fn full_page_screenshot(&self) -> Result<Vec<u8>, String> {
        let rect = self
            .session_command(reqwest::Method::GET, "/window/rect", None)
            .await?;
        let size = |key: &str| {
            rect[key]
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| format!("GET /window/rect: no {key} in {rect}"))
        };
        let (width, height) = (size("width")?, size("height")?);
        let dims = self
            .execute(
                "return [document.documentElement.scrollWidth, \
                 document.documentElement.scrollHeight, window.innerHeight];",
                vec![],
            )
            .await?;
        let dim = |i: usize| {
            dims[i]
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| format!("full_page_screenshot: bad page size {dims}"))
        };
        let (page_height, viewport_height) = (dim(1)?, dim(2)?);
        // The window's frame: what the outer height has beyond the viewport.
        let frame = height.saturating_sub(viewport_height);
        let full = page_height.saturating_add(frame).max(height);
        if full == height {
            return self.screenshot().await;
        }
        self.set_window_size(width, full).await?;
        let shot = self.screenshot().await;
        let restored = self.set_window_size(width, height).await;
        let shot = shot?;
        restored?;
        Ok(shot)
    }

    /// [`Browser::screenshot`] into the file `path`, creating its parent directories.
    pub async fn save_screenshot(&self, path: &Path) -> Result<(), String> {
        let png = self.screenshot().await?;
        write_file(path, &png)
    }

    /// Poll the current URL every 50 ms until `pred` accepts it, and return it; an error names the
    /// last URL seen once `timeout` has passed.
    pub async fn wait_for_url(
        &self,
        pred: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let url = self.current_url().await?;
            if pred(&url) {
                return Ok(url);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the URL did not match within {timeout:?}; it is {url}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The first element matching `css`, polling every 100 ms for up to [`WAIT`] while the page
    /// gets there; the error carries the page's source.
    pub async fn wait_find(&self, css: &str) -> Result<Element, String> {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.find(css).await {
                Ok(el) => return Ok(el),
                Err(e) if Instant::now() >= deadline => {
                    return Err(self.stuck(&format!("{e} (waited {WAIT:?})")).await);
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Wait up to [`WAIT`] until the page's `h1` reads `want`; the error carries the source.
    pub async fn wait_heading(&self, want: &str) -> Result<(), String> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(el) = self.find("h1").await
                && self.text(&el).await.unwrap_or_default() == want
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let what = format!("heading {want:?} never came (waited {WAIT:?})");
                return Err(self.stuck(&what).await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What a `wait_*` helper reports when the page never got there: `what`, the URL and the
    /// page's source, and `what` once more at the end, so that a log cut short still shows it.
    async fn stuck(&self, what: &str) -> String {
        let url = self.current_url().await.unwrap_or_default();
        let src = self.page_source().await.unwrap_or_default();
        format!("{what} at {url}\n--- page source ---\n{src}\n--- end of page source ---\n{what}")
    }

    /// Click the element matching `css` (a form's submit button, a link) and wait up to
    /// [`WAIT`] until the browser shows the **next** document, fully loaded. Checking for
    /// something on the next page alone races when the current page has it too (a heading
    /// both share, any `h1`): the old document is marked first, and a page counts as the next
    /// one only once that mark is gone. Without this, a `goto` right after a form's click can
    /// cancel the form's request halfway (a sign-out whose response never arrived).
    pub async fn click_and_wait(&self, css: &str) -> Result<(), String> {
        let el = self.wait_find(css).await?;
        self.execute("window.__testkitStale = true; return true;", vec![])
            .await?;
        self.click(&el).await?;
        let deadline = Instant::now() + WAIT;
        loop {
            // Between documents the script may fail (no document yet): not a result, poll on.
            let fresh = self
                .execute(
                    "return window.__testkitStale === undefined \
                     && document.readyState === 'complete';",
                    vec![],
                )
                .await;
            if fresh == Ok(Value::Bool(true)) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let url = self.current_url().await.unwrap_or_default();
                return Err(format!(
                    "click {css:?}: no new page within {WAIT:?} (still at {url})"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Close the session (and so Chromium), stop `chromedriver` and remove its `TMPDIR`.
    pub async fn quit(mut self) {
        if let Some(id) = self.session.take() {
            let _ = self
                .command(reqwest::Method::DELETE, &format!("/session/{id}"), None)
                .await;
        }
        let _ = self.driver.kill().await;
        // `Drop` removes `tmp`.
    }

    /// A command on this session: `path` is relative to `/session/{id}`.
    async fn session_command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let id = self
            .session
            .as_deref()
            .ok_or_else(|| "the WebDriver session is closed".to_owned())?;
        self.command(method, &format!("/session/{id}{path}"), body)
            .await
    }

    /// Send one WebDriver command and return the `value` of its answer, or an error with
    /// WebDriver's error JSON.
    async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let what = format!("{method} {path}");
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.map_err(|e| format!("{what}: {e}"))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| format!("{what}: {e}"))?;
        let mut parsed: Value = serde_json::from_str(&text)
            .map_err(|e| format!("{what}: HTTP {status}, not JSON ({e}): {text}"))?;
        let value = parsed["value"].take();
        if !status.is_success() || value.get("error").is_some() {
            // Leave out the (long) stack trace chromedriver adds.
            let mut shown = value;
            if let Some(obj) = shown.as_object_mut() {
                obj.remove("stacktrace");
            }
            return Err(format!("{what}: HTTP {status}: {shown}"));
        }
        Ok(value)
    }
}

impl Drop for Browser {
    /// Close a session that [`Browser::quit`] did not (killing `chromedriver` alone would leave
    /// Chromium running), stop `chromedriver` and remove its `TMPDIR`.
    fn drop(&mut self) {
        if let Some(id) = self.session.take() {
            self.delete_session_blocking(&id);
        }
        let _ = self.driver.start_kill();
        let _ = std::fs::remove_dir_all(&self.tmp);
    }
}

impl Browser {
    /// `DELETE /session/{id}` for `Drop`, which cannot await: a plain blocking HTTP request,
    /// bounded by a few seconds.
    fn delete_session_blocking(&self, id: &str) {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
        let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1))
        else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
        let request = format!(
            "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n",
            self.port
        );
        if stream.write_all(request.as_bytes()).is_err() {
            return;
        }
        // The answer comes once Chromium has exited. chromedriver may keep the connection open,
        // so read the head and `Content-Length` bytes of body rather than up to EOF.
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                continue;
            };
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return;
            }
        }
    }
}

fn as_string(value: Value, what: &str) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(format!("{what}: expected a string, got {other}")),
    }
}

/// Write `bytes` to `path`, creating its parent directories.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// `CHROMEDRIVER`, else `chromedriver` on `PATH`, else `/usr/bin/chromedriver`.
fn find_chromedriver() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("CHROMEDRIVER") {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "CHROMEDRIVER={} does not exist (`apt-get install chromium chromium-driver`)",
                path.display()
            ))
        };
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("chromedriver"))
            .find(|p| p.is_file())
    });
    if let Some(path) = on_path {
        return Ok(path);
    }
    let fallback = PathBuf::from(DEFAULT_CHROMEDRIVER);
    if fallback.is_file() {
        return Ok(fallback);
    }
    Err("chromedriver not found (set CHROMEDRIVER, or \
         `apt-get install chromium chromium-driver`)"
        .to_owned())
}

/// A loopback port that was free a moment ago.
fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("cannot bind a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("cannot read the free port: {e}"))
}
