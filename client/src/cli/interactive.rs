//! `interactive`: a small shell with history and tab completion. Passwords are read without
//! echo; tokens stay in memory, or in a 0600 file with `--remember`.

use mcp_auth_client::{AuditFilter, AuthenticatedMcpClient, ClientError};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};

use super::ui::Ui;

const COMMANDS: &[(&str, &str)] = &[
    (
        "login",
        "login <username> — sign in with a password (asked without echo)",
    ),
    (
        "login-browser",
        "login-browser — sign in through the browser (authorization code + PKCE)",
    ),
    (
        "login-device",
        "login-device — sign in with a code entered on another device (RFC 8628)",
    ),
    ("profile", "profile — who you are, per the MCP server"),
    ("note", "note <title> | <content> — store a secure note"),
    ("notes", "notes — list your notes"),
    (
        "apikey",
        "apikey create <name> <scope…> | apikey list | apikey revoke <id>",
    ),
    ("audit", "audit [n] — newest audit events (admins)"),
    (
        "summary",
        "summary — security summary of the last day (admins)",
    ),
    (
        "whoami",
        "whoami — the current token: client, scopes, expiry, sign-in method",
    ),
    ("logout", "logout — end the session and revoke the tokens"),
    ("help", "help — this list"),
    ("quit", "quit — leave"),
];

#[derive(Debug)]
struct Commands;

impl Completer for Commands {
    type Candidate = Pair;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let word = &line[..pos];
        if word.contains(' ') {
            let sub = ["create", "list", "revoke"];
            if let Some(rest) = word.strip_prefix("apikey ") {
                let out = sub
                    .iter()
                    .filter(|s| s.starts_with(rest))
                    .map(|s| Pair {
                        display: s.to_string(),
                        replacement: s.to_string(),
                    })
                    .collect();
                return Ok((7, out));
            }
            return Ok((pos, vec![]));
        }
        let out = COMMANDS
            .iter()
            .filter(|(c, _)| c.starts_with(word))
            .map(|(c, _)| Pair {
                display: c.to_string(),
                replacement: format!("{c} "),
            })
            .collect();
        Ok((0, out))
    }
}
impl Hinter for Commands {
    type Hint = String;
}
impl Highlighter for Commands {}
impl Validator for Commands {}
impl Helper for Commands {}

fn history_path() -> std::path::PathBuf {
    mcp_auth_client::tokens::default_path().with_file_name("history.txt")
}

pub async fn run(ui: &Ui, mcp_url: &str, client_id: &str, remember: bool) -> bool {
    let client = match AuthenticatedMcpClient::connect(mcp_url).await {
        Ok(c) => c.with_client_id(client_id),
        Err(e) => {
            ui.step("connect", false, &e.to_string());
            return false;
        }
    };
    let client = if remember {
        client
            .remember_in(mcp_auth_client::tokens::default_path())
            .await
    } else {
        client
    };
    let Ok(mut rl) = Editor::<Commands, DefaultHistory>::new() else {
        return false;
    };
    rl.set_helper(Some(Commands));
    let _ = rl.load_history(&history_path());
    println!(
        "Connected to {mcp_url} (authorization server {}). Type help.",
        client.endpoints().issuer
    );
    loop {
        let line = match rl.readline("mcp> ") {
            Ok(l) => l,
            Err(ReadlineError::Interrupted | ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("{e}");
                break;
            }
        };
        let line = line.trim().to_owned();
        if line.is_empty() {
            continue;
        }
        // Never keep a password-bearing line: commands never take one as an argument anyway.
        let _ = rl.add_history_entry(line.as_str());
        let (cmd, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let result = match cmd {
            "quit" | "exit" => break,
            "help" => {
                for (_, h) in COMMANDS {
                    println!("  {h}");
                }
                Ok(())
            }
            "login" => {
                let user = rest.trim();
                if user.is_empty() {
                    Err(ClientError::SignIn("usage: login <username>".into()))
                } else {
                    match rpassword::prompt_password("password: ") {
                        Ok(pw) => client
                            .login_with_password(user, &pw, "")
                            .await
                            .map(|_| println!("signed in as {user}")),
                        Err(e) => Err(ClientError::SignIn(e.to_string())),
                    }
                }
            }
            "login-browser" => client
                .login_with_browser("", |url| {
                    println!("Open this address to sign in:\n  {url}");
                    let _ = std::process::Command::new(if cfg!(target_os = "macos") {
                        "open"
                    } else {
                        "xdg-open"
                    })
                    .arg(url)
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn();
                })
                .await
                .map(|_| println!("signed in")),
            "login-device" => client
                .login_with_device("", |d| {
                    println!(
                        "On another device, open {} and enter the code {}",
                        d.verification_uri, d.user_code
                    );
                })
                .await
                .map(|_| println!("signed in")),
            "profile" => client
                .get_user_profile()
                .await
                .map(|p| ui.json("profile", &serde_json::to_value(p).unwrap_or_default())),
            "note" => match rest.split_once('|') {
                Some((t, c)) => client
                    .create_secure_note(t.trim(), c.trim())
                    .await
                    .map(|v| ui.json("stored", &v)),
                None => Err(ClientError::Tool("usage: note <title> | <content>".into())),
            },
            "notes" => client
                .list_secure_notes()
                .await
                .map(|n| ui.json("notes", &serde_json::Value::Array(n))),
            "apikey" => {
                let args: Vec<&str> = rest.split_whitespace().collect();
                match args.as_slice() {
                    ["create", name, scope @ ..] if !scope.is_empty() => client
                        .create_api_key(name, &scope.join(" "), None)
                        .await
                        .map(|k| {
                            println!(
                                "key {}\nsecret {} (shown once: store it now)\nscope {}",
                                k.client_id,
                                k.client_secret.expose(),
                                k.scope
                            )
                        }),
                    ["list"] => client
                        .list_api_keys()
                        .await
                        .map(|k| ui.json("keys", &serde_json::Value::Array(k))),
                    ["revoke", id] => client
                        .revoke_api_key(id)
                        .await
                        .map(|v| ui.json("revoked", &v)),
                    _ => Err(ClientError::Tool(
                        "usage: apikey create <name> <scope…> | list | revoke <id>".into(),
                    )),
                }
            }
            "audit" => {
                let n = rest.trim().parse().ok().or(Some(10));
                client
                    .list_audit_events(&AuditFilter {
                        limit: n,
                        ..Default::default()
                    })
                    .await
                    .map(|v| ui.json("events", &v["events"]))
            }
            "summary" => client
                .get_security_summary(None)
                .await
                .map(|v| ui.json("summary", &v["counts"])),
            "whoami" => match client.tokens().await {
                Some(t) => {
                    println!(
                        "client {} · scopes {} · expires in {} s · {:?}",
                        t.client_id,
                        t.scope,
                        t.expires_at - mcp_auth_client::signin::now(),
                        t.method
                    );
                    Ok(())
                }
                None => Err(ClientError::AuthRequired("not signed in".into())),
            },
            "logout" => client.logout().await.map(|_| println!("signed out")),
            other => Err(ClientError::Tool(format!(
                "unknown command {other:?}; try help"
            ))),
        };
        if let Err(e) = result {
            println!("  {e}");
        }
    }
    if let Some(dir) = history_path().parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = rl.save_history(&history_path());
    true
}
