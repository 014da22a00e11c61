//! `authz id-jag link | unlink | links`: which local user an identity provider's subject
//! speaks for on the jwt-bearer grant (ID-JAG, `subject_claim = "sub"`, the default; policy in
//! `authz::protocol::id_jag_subject`). Changes are audited (`id_jag.linked`, `id_jag.unlinked`).

use authz::error::{Error, Result};
use authz::protocol::id_jag_subject;
use authz::state::AppState;
use authz::store::IdJagLink;
use clap::Subcommand;
use serde_json::json;

const ACTOR: &str = "cli";

#[derive(Debug, Subcommand)]
pub enum IdJagCmd {
    /// Link an identity provider's subject (the ID-JAG's `sub`) to a local user: that IdP's
    /// grants for this subject then speak for the user. The issuer must be configured.
    Link {
        /// The issuer identifier, exactly as configured (the ID-JAG's `iss`).
        issuer: String,
        /// The IdP's subject identifier (the ID-JAG's `sub`).
        sub: String,
        /// The local user.
        username: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove a link (the issuer need not be configured any more).
    Unlink { issuer: String, sub: String },
    /// List the links: those made with `link`, and the configuration's static `subjects`.
    Links {
        /// Only this issuer's.
        #[arg(long)]
        issuer: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

fn link_json(l: &IdJagLink, source: &str) -> serde_json::Value {
    json!({ "issuer": l.issuer, "sub": l.subject, "user_id": l.user_id, "username": l.username,
            "created_at": l.created_at, "created_by": l.created_by, "source": source })
}

pub async fn run(state: &AppState, cmd: IdJagCmd) -> Result<()> {
    match cmd {
        IdJagCmd::Link {
            issuer,
            sub,
            username,
            json,
        } => {
            let link = id_jag_subject::link(state, ACTOR, &issuer, &sub, &username).await?;
            let user = state
                .store
                .get_user(&link.user_id)
                .await?
                .ok_or_else(|| Error::NotFound(format!("user {username:?}")))?;
            let notes = id_jag_subject::link_notes(state, &link, &user);
            if json {
                let mut v = link_json(&link, "store");
                v["notes"] = json!(notes);
                println!("{v}");
            } else {
                println!(
                    "linked sub {:?} of {} to user {} ({})",
                    link.subject, link.issuer, link.username, link.user_id
                );
                for n in notes {
                    println!("note: {n}");
                }
            }
        }
        IdJagCmd::Unlink { issuer, sub } => {
            let in_config = state
                .config
                .id_jag
                .issuer(&issuer)
                .and_then(|i| i.subjects.get(&sub));
            let user_id = match id_jag_subject::unlink(state, ACTOR, &issuer, &sub).await {
                Err(Error::NotFound(what)) if in_config.is_some() => {
                    return Err(Error::NotFound(format!(
                        "{what} made with `authz id-jag link`; it is in the configuration's \
                         subjects table of that issuer: remove it there"
                    )));
                }
                other => other?,
            };
            let who = match state.store.get_user(&user_id).await? {
                Some(u) => format!("{} ({user_id})", u.username),
                None => user_id,
            };
            println!("unlinked sub {sub:?} of {issuer} (it named user {who})");
        }
        IdJagCmd::Links { issuer, json } => {
            let mut rows: Vec<serde_json::Value> = state
                .store
                .id_jag_links(issuer.as_deref())
                .await?
                .iter()
                .map(|l| link_json(l, "store"))
                .collect();
            for i in &state.config.id_jag.issuers {
                if issuer.as_ref().is_some_and(|want| *want != i.issuer) {
                    continue;
                }
                for (sub, username) in &i.subjects {
                    rows.push(
                        json!({ "issuer": i.issuer, "sub": sub, "username": username,
                                      "source": "config" }),
                    );
                }
            }
            if json {
                println!("{}", serde_json::Value::Array(rows));
            } else {
                println!("{:<36} {:<28} {:<20} source", "issuer", "sub", "username");
                for r in &rows {
                    let s = |k: &str| r[k].as_str().unwrap_or("").to_owned();
                    println!(
                        "{:<36} {:<28} {:<20} {}",
                        s("issuer"),
                        s("sub"),
                        s("username"),
                        s("source")
                    );
                }
            }
        }
    }
    Ok(())
}
