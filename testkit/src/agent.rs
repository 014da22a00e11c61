//! `FormAgent`: a minimal browser stand-in for tests — reqwest without redirects, a cookie jar,
//! and helpers that read hidden form fields from HTML and submit the login and consent forms
//! exactly as a browser would (same fields, same cookies).

use std::collections::BTreeMap;
use std::sync::Mutex;

/// A response, read completely.
#[derive(Debug, Clone)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

#[derive(Debug)]
pub struct FormAgent {
    http: reqwest::Client,
    cookies: Mutex<BTreeMap<String, String>>,
}

impl Default for FormAgent {
    fn default() -> Self {
        Self::new()
    }
}

impl FormAgent {
    pub fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap_or_default(),
            cookies: Mutex::new(BTreeMap::new()),
        }
    }

    /// A browser that also trusts the certificate in the PEM file `ca` (an https test server).
    pub fn trusting(ca: &std::path::Path) -> Self {
        let pem = std::fs::read(ca).unwrap_or_default();
        let mut builder = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());
        if let Ok(cert) = reqwest::Certificate::from_pem(&pem) {
            builder = builder.add_root_certificate(cert);
        }
        Self {
            http: builder.build().unwrap_or_default(),
            cookies: Mutex::new(BTreeMap::new()),
        }
    }

    fn cookie_header(&self) -> String {
        let jar = self.cookies.lock().unwrap_or_else(|p| p.into_inner());
        jar.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The cookie `name`, if the server set it.
    pub fn cookie(&self, name: &str) -> Option<String> {
        let jar = self.cookies.lock().unwrap_or_else(|p| p.into_inner());
        jar.get(name).cloned()
    }

    /// Forget every cookie (a new browser).
    pub fn clear_cookies(&self) {
        self.cookies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    async fn read(&self, resp: reqwest::Response) -> Page {
        let mut jar = self
            .cookies
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for sc in resp.headers().get_all(reqwest::header::SET_COOKIE) {
            let Ok(sc) = sc.to_str() else { continue };
            let mut parts = sc.split(';');
            let Some((k, v)) = parts.next().and_then(|p| p.trim().split_once('=')) else {
                continue;
            };
            let expired = parts.any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
            if expired || v.is_empty() {
                jar.remove(k);
            } else {
                jar.insert(k.to_owned(), v.to_owned());
            }
        }
        *self.cookies.lock().unwrap_or_else(|p| p.into_inner()) = jar;
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let headers = resp.headers().clone();
        let body = resp.text().await.unwrap_or_default();
        Page {
            status,
            location,
            headers,
            body,
        }
    }

    pub async fn get(&self, url: &str) -> Page {
        let resp = self
            .http
            .get(url)
            .header(reqwest::header::COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        self.read(resp).await
    }

    pub async fn post_form(&self, url: &str, fields: &[(String, String)]) -> Page {
        let resp = self
            .http
            .post(url)
            .header(reqwest::header::COOKIE, self.cookie_header())
            .form(fields)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        self.read(resp).await
    }

    /// Sign in through the real pages: open `authorize_url`; on the login page submit
    /// `username`/`password`; on the consent page choose `decision` ("approve" or "deny").
    /// Returns the final redirect to the client (`Location`), or the page where the flow
    /// stopped (e.g. a failed login) as `Err`.
    pub async fn sign_in(
        &self,
        base: &str,
        authorize_url: &str,
        username: &str,
        password: &str,
        decision: &str,
    ) -> Result<String, Page> {
        let mut page = self.get(authorize_url).await;
        for _ in 0..5 {
            if page.status == 303 || page.status == 302 {
                let loc = page.location.clone().unwrap_or_default();
                if loc.starts_with('/') {
                    page = self.get(&format!("{base}{loc}")).await;
                    continue;
                }
                return Ok(loc);
            }
            if page.status != 200 {
                return Err(page);
            }
            let mut fields = hidden_inputs(&page.body);
            if page.body.contains("action=\"/login\"") {
                fields.push(("username".into(), username.into()));
                fields.push(("password".into(), password.into()));
                let next = self.post_form(&format!("{base}/login"), &fields).await;
                if next.status == 200 {
                    return Err(next);
                }
                page = next;
            } else if page.body.contains("action=\"/consent\"") {
                fields.push(("decision".into(), decision.into()));
                page = self.post_form(&format!("{base}/consent"), &fields).await;
            } else {
                return Err(page);
            }
        }
        Err(page)
    }
}

/// `(name, value)` of every `<input type="hidden">` in `html`, values unescaped.
pub fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for tag in html.split("<input").skip(1) {
        let tag = tag.split('>').next().unwrap_or("");
        if attr(tag, "type").as_deref() != Some("hidden") {
            continue;
        }
        if let (Some(n), Some(v)) = (attr(tag, "name"), attr(tag, "value")) {
            out.push((n, v));
        }
    }
    out
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!("{name}=\"");
    let start = tag.find(&format!(" {key}"))? + key.len() + 1;
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

/// Undo HTML escaping (named and numeric character references).
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some(end) = tail.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = &tail[1..];
            continue;
        };
        let ent = &tail[1..end];
        let ch = match ent {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ if ent.starts_with("#x") || ent.starts_with("#X") => {
                u32::from_str_radix(&ent[2..], 16)
                    .ok()
                    .and_then(char::from_u32)
            }
            _ if ent.starts_with('#') => ent[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hidden_inputs() {
        let html = r#"<form><input type="hidden" name="csrf" value="a&#43;b">
            <input type="text" name="username" value="x">
            <input type="hidden" name="request" value="client_id=c&amp;state=&#34;s&#34;"></form>"#;
        assert_eq!(
            hidden_inputs(html),
            vec![
                ("csrf".to_owned(), "a+b".to_owned()),
                ("request".to_owned(), "client_id=c&state=\"s\"".to_owned())
            ]
        );
    }
}
