//! Command-line interface: `serve`, `migrate`, `user …`, `client …`, `keys …`, `id-jag …`,
//! `seed-demo`.
//! Commands that create or list things take `--json`; secrets are printed once, on creation.

mod id_jag;
mod upstream;

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::Arc;

use authz::clients::admin as client_admin;
use authz::clock::SystemClock;
use authz::config::Config;
use authz::error::{Error, Result};
use authz::identity::admin::{self, Policy};
use authz::keys::KeySwitch;
use authz::keys::SigningAlg;
use authz::state::AppState;
use authz::store::{AuthMethod, Client, ClientSettings, GrantType, Registration, User};
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use shared::secret::Password;

#[derive(Debug, Parser)]
#[command(
    name = "authz",
    version,
    about = "OAuth 2.0 / OpenID Connect authorization server"
)]
pub struct Cli {
    /// TOML configuration file; AUTHZ_* environment variables override it.
    #[arg(long, global = true, env = "AUTHZ_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (migrates the database and creates a signing key if needed).
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(UserCmd),
    /// Manage OAuth clients.
    #[command(subcommand)]
    Client(ClientCmd),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Enterprise-managed authorization (ID-JAG): link identity-provider subjects to users.
    #[command(subcommand)]
    IdJag(id_jag::IdJagCmd),
    /// Federation: the upstream identity providers people sign in through.
    #[command(subcommand)]
    Upstream(upstream::UpstreamCmd),
    /// Create the demo accounts and clients (DEMO ONLY: publicly known passwords).
    SeedDemo(JsonFlag),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Also create the demo accounts and clients on start (DEMO ONLY).
    #[arg(long)]
    seed_demo: bool,
    /// Serve https with this PEM certificate chain (with --tls-key; AUTHZ_TLS_CERT).
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's PEM private key (AUTHZ_TLS_KEY).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Create a user; the password is prompted for (no echo) or read from stdin.
    Add {
        username: String,
        /// Role(s); repeat or comma-separate.
        #[arg(long = "role", value_delimiter = ',', default_value = "user")]
        roles: Vec<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Email address (released with the `email` scope).
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        json: bool,
    },
    List(JsonFlag),
    /// Replace a user's roles.
    SetRoles {
        username: String,
        #[arg(required = true, value_delimiter = ',')]
        roles: Vec<String>,
    },
    /// Disable a user (their refresh tokens stop working).
    Disable {
        username: String,
    },
    /// Re-enable a disabled user.
    Enable {
        username: String,
    },
    /// Set a new password.
    Passwd {
        username: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientCmd {
    /// Register a client. Confidential clients get a secret, printed once.
    Add {
        /// Client id (default: generated).
        #[arg(long)]
        id: Option<String>,
        #[arg(long)]
        name: String,
        /// client_secret_basic (default), client_secret_post, none (public client), or
        /// private_key_jwt (with --jwks-uri).
        #[arg(long, default_value = "client_secret_basic")]
        auth_method: AuthMethod,
        /// private_key_jwt: the https URL of the client's public keys (a JWK Set).
        #[arg(long)]
        jwks_uri: Option<String>,
        /// Allowed grant(s): authorization_code, refresh_token, client_credentials, password.
        /// The password grant is legacy (RFC 9700 §2.4) and only for first-party clients.
        #[arg(long = "grant", value_delimiter = ',', required = true)]
        grants: Vec<GrantType>,
        /// Most scopes the client may be granted (space- or comma-separated).
        #[arg(long, default_value = "")]
        scope: String,
        /// Resource URI(s) it may get tokens for (default: the configured default resource).
        #[arg(long = "resource")]
        resources: Vec<String>,
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Issue refresh tokens even without offline_access.
        #[arg(long)]
        always_refresh: bool,
        /// Where RP-initiated logout may return the browser.
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// A first-party confidential client: users are not asked to consent (refused for
        /// public clients, whose identity nothing proves: RFC 8252 §8.6).
        #[arg(long)]
        skip_consent: bool,
        /// The resource server this client is (token exchange accepts user tokens for it).
        #[arg(long)]
        serves_resource: Option<String>,
        /// May call /introspect.
        #[arg(long)]
        introspect: bool,
        /// Every token request must carry a DPoP proof (RFC 9449 §5.2).
        #[arg(long)]
        dpop_bound: bool,
        /// Authorization requests only through /par (RFC 9126 §6).
        #[arg(long)]
        require_par: bool,
        #[arg(long)]
        json: bool,
    },
    List(JsonFlag),
    /// Delete self-registered clients never used within a day of registering, or idle for
    /// 90 days with no live grant (the configured limits); `--dry-run` only lists them.
    Prune {
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        json: bool,
    },
    /// Fetch a metadata-document client's document again now (its URL is its client id).
    Refresh {
        url: String,
        #[arg(long)]
        json: bool,
    },
    /// Replace a confidential client's secret; prints the new one once.
    RotateSecret {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a client and every refresh token issued to it.
    Delete {
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    List(JsonFlag),
    /// Rotate the signing key: the new key is published at once and signs after the
    /// pre-publication delay (AUTHZ_KEY_PREPUBLISH_SECS), so resource servers know it before
    /// its first token arrives; the old one stays in the JWKS until its tokens have expired.
    Rotate {
        /// RS256, ES256 or EdDSA (default: the configured signing_alg).
        #[arg(long)]
        alg: Option<SigningAlg>,
        /// Sign with the new key at once (a compromised key): resource servers refuse its
        /// tokens until they refetch the JWKS (our verifier: within a second; others: up to
        /// their JWKS cache time).
        #[arg(long)]
        now: bool,
        #[arg(long)]
        json: bool,
    },
    /// Withdraw a key at once (a compromised key): unpublished from the JWKS, running servers
    /// told (PostgreSQL: at once; SQLite: within AUTHZ_KEY_RELOAD_SECS or on SIGHUP), tokens it
    /// signed refused from then on; resource servers drop it at their next JWKS fetch. The
    /// active key is first replaced by a new one signing at once. Refresh tokens keep working.
    Revoke {
        kid: String,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(command: Command, mut config: Config) -> Result<()> {
    if let Command::Serve(args) = &command
        && args.tls_cert.is_some()
    {
        config.tls_cert.clone_from(&args.tls_cert);
        config.tls_key.clone_from(&args.tls_key);
    }
    if let Command::Migrate = command {
        authz::open_store(&config).await?;
        println!(
            "migrations applied to {}",
            redact_url(&config.database_url())
        );
        return Ok(());
    }
    let state = authz::build_state(config, Arc::new(SystemClock)).await?;
    let audit_log = state.audit_log.clone();
    let result = dispatch(state, command).await;
    audit_log.flush().await;
    result
}

async fn dispatch(state: AppState, command: Command) -> Result<()> {
    match command {
        Command::Serve(args) => serve(state, args).await,
        Command::Migrate => Ok(()),
        Command::User(cmd) => user(&state, cmd).await,
        Command::Client(cmd) => client(&state, cmd).await,
        Command::Keys(cmd) => keys(&state, cmd).await,
        Command::IdJag(cmd) => id_jag::run(&state, cmd).await,
        Command::Upstream(cmd) => upstream::run(&state, cmd).await,
        Command::SeedDemo(f) => {
            let report = authz::seed::seed_demo(&state).await?;
            if f.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).map_err(Error::internal)?
                );
            } else {
                print_demo(&state, &report);
            }
            Ok(())
        }
    }
}

async fn serve(state: AppState, args: ServeArgs) -> Result<()> {
    if args.seed_demo {
        let report = authz::seed::seed_demo(&state).await?;
        print_demo(&state, &report);
    }
    let c = &state.config;
    let listen = shared::serve::Listen {
        bind: c.bind,
        tls_cert: c.tls_cert.clone(),
        tls_key: c.tls_key.clone(),
        metrics_bind: c.metrics_bind,
    };
    let server = shared::serve::Server::bind(&listen)
        .await
        .map_err(|e| match e {
            shared::serve::ServeError::Listener(e) => Error::internal(e),
            other => Error::Invalid(other.to_string()),
        })?;
    let addr = server.local_addr();
    let database = redact_url(&c.database_url());
    if c.log_format == shared::observe::LogFormat::Json {
        // Machine-read logs: the banner is one event like every other line.
        tracing::info!(%addr, issuer = %c.issuer, %database, "authz listening");
    } else {
        eprintln!(
            "authz listening on {}://{addr}\n  issuer:    {}\n  metadata:  {}/.well-known/oauth-authorization-server\n  database:  {database}",
            server.scheme(),
            c.issuer,
            c.issuer,
        );
    }
    let metrics = authz::http::metrics::router(state.clone());
    server
        .run(metrics, |listener| {
            authz::serve_on(state, listener, shared::serve::shutdown_signal())
        })
        .await
}

fn print_demo(state: &AppState, r: &authz::seed::DemoReport) {
    eprintln!("\n  ⚠  DEMO DATA — publicly known passwords. Never use seed-demo in production.");
    for (u, p, role) in authz::seed::DEMO_USERS {
        eprintln!("     user {u:<12} password {p:<15} role {role}");
    }
    eprintln!(
        "     client {} (public; password + refresh_token grants)",
        authz::seed::DEMO_CLI_CLIENT
    );
    match r.service_client_secret.as_ref().map(|s| s.expose()) {
        Some(s) => eprintln!(
            "     client {} secret {s} (client_credentials)\n\n  try:\n     curl -s -u {}:{s} -d grant_type=client_credentials {}/token\n",
            authz::seed::DEMO_SERVICE_CLIENT,
            authz::seed::DEMO_SERVICE_CLIENT,
            state.config.issuer
        ),
        None => eprintln!(
            "     client {} (secret shown when it was created)",
            authz::seed::DEMO_SERVICE_CLIENT
        ),
    }
}

/// Hide a password embedded in a database URL.
fn redact_url(url: &str) -> String {
    shared::secret::DatabaseUrl::new(url).redacted()
}

fn read_password(from_stdin: bool, prompt: &str) -> Result<Password> {
    let pw = if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(Error::internal)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        let first = rpassword::prompt_password(prompt).map_err(Error::internal)?;
        let again = rpassword::prompt_password("Repeat: ").map_err(Error::internal)?;
        if first != again {
            return Err(Error::Invalid("passwords do not match".into()));
        }
        first
    };
    if pw.is_empty() {
        return Err(Error::Invalid("empty password".into()));
    }
    Ok(Password::new(pw))
}

fn user_json(u: &User) -> serde_json::Value {
    json!({ "id": u.id, "username": u.username, "roles": u.roles, "email": u.email,
            "disabled": u.disabled_at.is_some(), "created_at": u.created_at })
}

async fn user(state: &AppState, cmd: UserCmd) -> Result<()> {
    const ACTOR: &str = "cli";
    match cmd {
        UserCmd::Add {
            username,
            roles,
            password_stdin,
            email,
            json,
        } => {
            let pw = read_password(password_stdin, "Password: ")?;
            let mut u = admin::add_user(
                state.identity(),
                ACTOR,
                &username,
                &pw,
                roles,
                Policy::Enforce,
            )
            .await?;
            if let Some(e) = email.as_deref() {
                admin::set_email(&*state.store, &state.events, ACTOR, &username, Some(e)).await?;
                u.email = Some(e.to_owned());
            }
            if json {
                println!("{}", user_json(&u));
            } else {
                println!(
                    "created user {} ({}) roles {}",
                    u.username,
                    u.id,
                    u.roles.join(",")
                );
            }
        }
        UserCmd::List(f) => {
            let users = state.store.list_users().await?;
            if f.json {
                println!(
                    "{}",
                    serde_json::Value::Array(users.iter().map(user_json).collect())
                );
            } else {
                println!("{:<24} {:<26} {:<20} status", "username", "id", "roles");
                for u in users {
                    let status = if u.disabled_at.is_some() {
                        "disabled"
                    } else {
                        "active"
                    };
                    println!(
                        "{:<24} {:<26} {:<20} {status}",
                        u.username,
                        u.id,
                        u.roles.join(",")
                    );
                }
            }
        }
        UserCmd::SetRoles { username, roles } => {
            let u = admin::set_roles(
                &*state.store,
                &state.config,
                &state.events,
                ACTOR,
                &username,
                roles,
            )
            .await?;
            println!("{} now has roles {}", u.username, u.roles.join(","));
        }
        UserCmd::Disable { username } => {
            admin::set_disabled(&*state.store, &state.events, ACTOR, &username, true).await?;
            println!("disabled {username}");
        }
        UserCmd::Enable { username } => {
            admin::set_disabled(&*state.store, &state.events, ACTOR, &username, false).await?;
            println!("enabled {username}");
        }
        UserCmd::Passwd {
            username,
            password_stdin,
        } => {
            let pw = read_password(password_stdin, "New password: ")?;
            admin::set_password(state.identity(), ACTOR, &username, &pw).await?;
            println!("password changed for {username}");
        }
    }
    Ok(())
}

fn client_json(c: &Client) -> serde_json::Value {
    json!({
        "client_id": c.id, "name": c.name, "token_endpoint_auth_method": c.auth_method.as_str(),
        "grant_types": c.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "scope": c.scopes.to_string(), "resources": c.resources, "redirect_uris": c.redirect_uris,
        "always_issue_refresh": c.always_issue_refresh, "created_at": c.created_at,
        "post_logout_redirect_uris": c.post_logout_redirect_uris, "skip_consent": c.skip_consent,
        "registration": c.registration.as_str(),
        "metadata_host": (c.registration == Registration::MetadataDocument)
            .then(|| authz::clients::cimd::host_of(&c.id)).flatten(),
        "metadata_fetched_at": c.metadata_fetched_at,
        "serves_resource": c.serves_resource, "may_introspect": c.may_introspect,
        "dpop_bound_access_tokens": c.dpop_bound_access_tokens,
        "require_pushed_authorization_requests": c.require_pushed_authorization_requests,
    })
}

async fn client(state: &AppState, cmd: ClientCmd) -> Result<()> {
    const ACTOR: &str = "cli";
    match cmd {
        ClientCmd::Add {
            id,
            name,
            auth_method,
            grants,
            scope,
            resources,
            redirect_uris,
            always_refresh,
            post_logout_redirect_uris,
            skip_consent,
            serves_resource,
            introspect,
            dpop_bound,
            require_par,
            jwks_uri,
            json,
        } => {
            let scopes = client_admin::parse_scopes(&scope)?;
            let new = ClientSettings {
                name,
                auth_method,
                grant_types: grants,
                redirect_uris,
                scopes,
                resources,
                always_issue_refresh: always_refresh,
                post_logout_redirect_uris,
                skip_consent,
                serves_resource,
                may_introspect: introspect,
                jwks_uri,
                dpop_bound_access_tokens: dpop_bound,
                require_pushed_authorization_requests: require_par,
                ..Default::default()
            };
            let (c, secret) =
                client_admin::add_client(state.client_services(), ACTOR, id, new).await?;
            if json {
                let mut v = client_json(&c);
                if let Some(s) = &secret {
                    v["client_secret"] = json!(s.expose());
                }
                println!("{v}");
            } else {
                println!("created client {} ({})", c.id, c.auth_method.as_str());
                if let Some(s) = secret {
                    println!("client_secret: {}\n(shown once: store it now)", s.expose());
                }
            }
        }
        ClientCmd::List(f) => {
            let clients = state.store.list_clients().await?;
            if f.json {
                println!(
                    "{}",
                    serde_json::Value::Array(clients.iter().map(client_json).collect())
                );
            } else {
                println!(
                    "{:<20} {:<18} {:<22} {:<40} scopes",
                    "client_id", "kind", "auth", "grants"
                );
                for c in clients {
                    let g: Vec<&str> = c.grant_types.iter().map(|g| g.as_str()).collect();
                    println!(
                        "{:<20} {:<18} {:<22} {:<40} {}",
                        c.id,
                        c.registration.as_str(),
                        c.auth_method.as_str(),
                        g.join(","),
                        c.scopes
                    );
                    if let (Some(host), Some(at)) =
                        (authz::clients::cimd::host_of(&c.id), c.metadata_fetched_at)
                    {
                        println!(
                            "{:<20} metadata document at {host}, last fetched at {at}",
                            ""
                        );
                    }
                }
            }
        }
        ClientCmd::Prune { dry_run, json } => {
            let pruned = client_admin::prune_clients(
                &*state.store,
                &state.clients,
                &state.events,
                &state.config.browser,
                ACTOR,
                dry_run,
            )
            .await?;
            if json {
                println!("{}", json!(pruned));
            } else {
                let verb = if dry_run { "would delete" } else { "deleted" };
                for p in &pruned {
                    println!("{verb} {} ({}): {}", p.client_id, p.name, p.reason);
                }
                println!("{} client(s) {verb}", pruned.len());
            }
        }
        ClientCmd::Refresh { url, json } => {
            let c = authz::clients::cimd::refresh(state.client_services(), &url)
                .await?
                .map_err(|r| Error::Invalid(format!("the document was refused: {}", r.0)))?
                .ok_or_else(|| Error::NotFound(format!("client {url}")))?;
            if json {
                println!("{}", client_json(&c));
            } else {
                println!(
                    "refreshed {} ({}), fetched at {:?}",
                    c.id, c.name, c.metadata_fetched_at
                );
            }
        }
        ClientCmd::RotateSecret { id, json } => {
            let s = client_admin::rotate_client_secret(
                &*state.store,
                &state.clients,
                &state.events,
                ACTOR,
                &id,
            )
            .await?;
            if json {
                println!(
                    "{}",
                    json!({ "client_id": id, "client_secret": s.expose() })
                );
            } else {
                println!(
                    "new client_secret for {id}: {}\n(shown once: store it now)",
                    s.expose()
                );
            }
        }
        ClientCmd::Delete { id } => {
            client_admin::delete_client(&*state.store, &state.clients, &state.events, ACTOR, &id)
                .await?;
            println!("deleted client {id}");
        }
    }
    Ok(())
}

async fn keys(state: &AppState, cmd: KeysCmd) -> Result<()> {
    match cmd {
        KeysCmd::List(f) => {
            let keys = state.store.all_keys().await?;
            let now = state.now();
            let rows: Vec<serde_json::Value> = keys
                .iter()
                .map(|k| {
                    json!({ "kid": k.kid, "alg": k.alg, "status": k.status.as_str(),
                            "published": k.is_published(now), "created_at": k.created_at,
                            "activate_at": k.activate_at,
                            "retired_at": k.retired_at, "publish_until": k.publish_until })
                })
                .collect();
            if f.json {
                println!("{}", serde_json::Value::Array(rows));
            } else {
                println!("{:<45} {:<6} {:<9} published", "kid", "alg", "status");
                for k in &keys {
                    println!(
                        "{:<45} {:<6} {:<9} {}",
                        k.kid,
                        k.alg,
                        k.status.as_str(),
                        k.is_published(now)
                    );
                }
            }
        }
        KeysCmd::Rotate { alg, now, json } => {
            let alg = alg.unwrap_or(state.config.signing_alg);
            let switch = if now {
                KeySwitch::Now
            } else {
                KeySwitch::AfterPrepublication
            };
            let (kid, activate_at) = state.key_admin().rotate_keys("cli", alg, switch).await?;
            if json {
                println!(
                    "{}",
                    json!({ "kid": kid, "alg": alg.as_str(), "activate_at": activate_at,
                            "immediate": now })
                );
            } else if now {
                println!(
                    "new active key {kid} ({alg}), signing now; running servers pick it up within \
                     {}s (or on SIGHUP). Resource servers refuse its tokens until they refetch \
                     the JWKS.",
                    state.config.key_reload_secs
                );
            } else {
                println!(
                    "new key {kid} ({alg}) published; it starts signing in {}s (at {activate_at}). \
                     Running servers publish it within {}s (or on SIGHUP).",
                    activate_at - state.now(),
                    state.config.key_reload_secs
                );
            }
        }
        KeysCmd::Revoke { kid, json } => {
            let w = state.key_admin().withdraw_key("cli", &kid).await?;
            if json {
                println!(
                    "{}",
                    json!({ "kid": w.kid, "status": "withdrawn", "purpose": w.purpose.as_str(),
                            "replaced_by": w.replaced_by })
                );
            } else {
                println!(
                    "withdrew key {} ({}): no longer published",
                    w.kid,
                    w.purpose.as_str()
                );
                if let Some(new) = &w.replaced_by {
                    println!("new active key {new}, signing now");
                }
                println!(
                    "Running servers drop it at once on PostgreSQL, within {}s on SQLite (or on \
                     SIGHUP); resource servers at their next JWKS fetch. Its tokens are refused \
                     from then on; refresh tokens keep working.",
                    state.config.key_reload_secs
                );
            }
        }
    }
    Ok(())
}
