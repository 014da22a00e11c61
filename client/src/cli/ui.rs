//! Terminal output: colours (off when not a terminal or with `NO_COLOR`), a spinner while
//! waiting, and JSON lines for scripting (`--format json`).

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct Ui {
    pub format: Format,
    color: bool,
}

impl Ui {
    pub fn new(format: Format) -> Self {
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Self { format, color }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }

    pub fn heading(&self, s: &str) {
        if self.format == Format::Text {
            println!("\n{}", self.paint("1;36", &format!("▶ {s}")));
        }
    }

    pub fn info(&self, s: &str) {
        if self.format == Format::Text {
            println!("  {s}");
        }
    }

    /// One checked step: ✔ / ✘ in text, a JSON line otherwise.
    pub fn step(&self, name: &str, ok: bool, detail: &str) {
        match self.format {
            Format::Text => {
                let mark = if ok {
                    self.paint("32", "✔")
                } else {
                    self.paint("31", "✘")
                };
                println!(
                    "  {mark} {name}{}",
                    if detail.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", self.paint("2", detail))
                    }
                );
            }
            Format::Json => {
                println!(
                    "{}",
                    serde_json::json!({ "step": name, "ok": ok, "detail": detail })
                );
            }
        }
    }

    pub fn json(&self, label: &str, v: &Value) {
        match self.format {
            Format::Text => {
                let pretty = serde_json::to_string_pretty(v).unwrap_or_default();
                println!("  {label}:");
                for line in pretty.lines() {
                    println!("    {line}");
                }
            }
            Format::Json => println!("{}", serde_json::json!({ "data": label, "value": v })),
        }
    }

    /// A spinner on stderr while `fut` runs (only on a terminal, only in text mode).
    pub async fn spin<T>(&self, msg: &str, fut: impl std::future::Future<Output = T>) -> T {
        if self.format != Format::Text || !std::io::stderr().is_terminal() {
            return fut.await;
        }
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let msg = msg.to_owned();
        let task = tokio::spawn(async move {
            let frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
            let mut i = 0;
            while !flag.load(Ordering::Relaxed) {
                eprint!("\r  {} {msg}", frames[i % frames.len()]);
                let _ = std::io::stderr().flush();
                i += 1;
                tokio::time::sleep(std::time::Duration::from_millis(80)).await;
            }
            eprint!("\r\x1b[2K");
        });
        let out = fut.await;
        done.store(true, Ordering::Relaxed);
        let _ = task.await;
        out
    }
}
