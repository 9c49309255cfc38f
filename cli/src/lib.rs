//! The `entryguard` command line (issue 15): sessions from the terminal and from scripts.

pub mod args;
pub mod client;
pub mod config;
pub mod error;
mod exec;
pub mod probes;
pub mod types;
mod watch;

use std::io::{BufRead, IsTerminal};
use std::time::Duration;

use clap::CommandFactory;
use serde::Serialize;
use serde_json::json;

use args::{Cli, Command, Global};
use client::Client;
use config::{Profile, Profiles};
use error::{exit, CliError};
use types::{Me, Session, SessionExt, SessionStatus};

/// Runs a parsed command line; returns the process's exit code.
pub async fn run(cli: Cli) -> u8 {
    let out = Out {
        json: cli.global.json,
        quiet: cli.global.quiet,
    };
    match dispatch(&cli.global, cli.command, &out).await {
        Ok(code) => code,
        Err(e) => {
            if out.json {
                println!("{}", e.to_json());
            } else {
                eprintln!("entryguard: {e}");
            }
            e.exit_code()
        }
    }
}

/// Where results go: a person's lines, one JSON document, or nothing.
pub struct Out {
    pub json: bool,
    pub quiet: bool,
}

impl Out {
    fn result<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) {
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(value).expect("results serialize")
            );
        } else if !self.quiet {
            println!("{}", human());
        }
    }

    /// Progress and notes for a person, on stderr.
    fn note(&self, text: &str) {
        if !self.json && !self.quiet {
            eprintln!("{text}");
        }
    }

    /// Something the person should know even when a script reads `--json` from stdout.
    fn notice(&self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }

    fn progress(&self) -> bool {
        !self.json && !self.quiet
    }
}

async fn dispatch(global: &Global, command: Command, out: &Out) -> Result<u8, CliError> {
    match command {
        Command::Login => login(global, out).await,
        Command::Logout => logout(global, out),
        Command::Status { all } => status(global, all, out).await,
        Command::Start {
            hours,
            wait,
            wait_opts,
            address_opts,
        } => {
            let client = signed_in(global)?;
            let hours = duration(&client, hours).await?;
            let session = start(&client, hours, address_opts.no_probes, out).await?;
            if !wait {
                out.result(&session, || {
                    format!(
                        "Started session {} for {} ({}, until {})",
                        session.id,
                        addresses(&session),
                        types::wire(&session.status),
                        local(session.expires_at)
                    )
                });
                return Ok(exit::OK);
            }
            out.note(&format!(
                "Session {} started for {}; opening {} resource(s)…",
                session.id,
                addresses(&session),
                session.resource_count
            ));
            let session = watch::until_settled(
                &client,
                session,
                Duration::from_secs(wait_opts.timeout),
                out.progress(),
            )
            .await?;
            settled(session, out)
        }
        Command::Stop { id, all } => {
            let client = signed_in(global)?;
            let targets = if all {
                live(&client).await?
            } else {
                vec![chosen(&client, id).await?]
            };
            let mut stopped = Vec::new();
            for s in targets {
                stopped.push(client.stop(&s.id).await?);
            }
            out.result(&stopped, || {
                if stopped.is_empty() {
                    "No live sessions.".into()
                } else {
                    stopped
                        .iter()
                        .map(|s| format!("Stopped session {} ({})", s.id, types::wire(&s.status)))
                        .collect::<Vec<_>>()
                        .join("\n")
                }
            });
            Ok(exit::OK)
        }
        Command::Extend { id, hours } => {
            let client = signed_in(global)?;
            let target = chosen(&client, id).await?;
            let s = client.extend(&target.id, hours).await?;
            out.result(&s, || {
                format!("Session {} now lasts until {}", s.id, local(s.expires_at))
            });
            Ok(exit::OK)
        }
        Command::Exec {
            hours,
            new,
            wait_opts,
            address_opts,
            command,
        } => {
            let client = signed_in(global)?;
            exec::run(
                &client,
                hours,
                new,
                address_opts.no_probes,
                Duration::from_secs(wait_opts.timeout),
                &command,
                out,
            )
            .await
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "entryguard",
                &mut std::io::stdout(),
            );
            Ok(exit::OK)
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command())
                .render(&mut std::io::stdout())
                .map_err(|e| CliError::Local(format!("cannot write the man page: {e}")))?;
            Ok(exit::OK)
        }
    }
}

/// The exit code of a settled session; PARTIAL and FAILED carry what failed and why.
fn settled(session: Session, out: &Out) -> Result<u8, CliError> {
    match session.status {
        SessionStatus::Active => {
            out.result(&session, || {
                format!(
                    "Session {} is ACTIVE until {}",
                    session.id,
                    local(session.expires_at)
                )
            });
            Ok(exit::OK)
        }
        SessionStatus::Partial => Err(CliError::Partial {
            id: session.id.clone(),
            session: Box::new(session),
        }),
        _ => Err(CliError::Failed {
            id: session.id.clone(),
            session: Box::new(session),
        }),
    }
}

fn env_token() -> Option<String> {
    std::env::var("ENTRYGUARD_TOKEN")
        .ok()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// The probe hosts given on the command line or in the environment.
fn flag_probes(global: &Global) -> probes::ProbeUrls {
    probes::ProbeUrls {
        v4: global.probe_v4.clone(),
        v6: global.probe_v6.clone(),
    }
}

/// The client of the profile, with ENTRYGUARD_API, ENTRYGUARD_TOKEN and the probe flags taking
/// precedence.
fn signed_in(global: &Global) -> Result<Client, CliError> {
    let stored = Profiles::load(&config::path()?)?
        .profiles
        .remove(&global.profile);
    let api = global
        .api
        .clone()
        .or_else(|| stored.as_ref().map(|p| p.api.clone()));
    let probes = flag_probes(global).or(stored.as_ref().map(Profile::probes).unwrap_or_default());
    let token = env_token().or_else(|| stored.map(|p| p.token));
    match (api, token) {
        (Some(api), Some(token)) => {
            Ok(Client::new(&api, token, &global.profile)?.with_probes(probes))
        }
        _ => Err(CliError::NotSignedIn(global.profile.clone())),
    }
}

/// Starts a session for the address of this request and, unless `no_probes`, every other
/// address the probes prove. A probe that failed is a note once the session started (before,
/// it would only bury an error the start may still answer).
async fn start(
    client: &Client,
    hours: u32,
    no_probes: bool,
    out: &Out,
) -> Result<Session, CliError> {
    let detected = if no_probes {
        probes::Detected::default()
    } else {
        probes::detect(client).await
    };
    let session = client.start(hours, &detected.proofs).await?;
    for note in &detected.notes {
        out.notice(note);
    }
    Ok(session)
}

/// "192.0.2.7 (v4) and 2001:db8::7 (v6)".
fn addresses(session: &Session) -> String {
    session
        .ip_addresses
        .iter()
        .map(|ip| format!("{} ({})", ip.address, types::wire(&ip.version)))
        .collect::<Vec<_>>()
        .join(" and ")
}

async fn login(global: &Global, out: &Out) -> Result<u8, CliError> {
    let path = config::path()?;
    let mut profiles = Profiles::load(&path)?;
    let api = global
        .api
        .clone()
        .or_else(|| {
            profiles
                .profiles
                .get(&global.profile)
                .map(|p| p.api.clone())
        })
        .ok_or_else(|| CliError::Local("which deployment? give its address: --api URL".into()))?;
    let token = match env_token() {
        Some(t) => t,
        None => read_token()?,
    };
    let client = Client::new(&api, token.clone(), &global.profile)?;
    let previous = profiles.profiles.get(&global.profile);
    let probes = flag_probes(global).or(previous.map(Profile::probes).unwrap_or_default());
    let me = client.me().await.map_err(|e| match e {
        CliError::TokenRefused { message, .. } => CliError::Local(format!(
            "{api} refused this token (mistyped, expired or revoked): {message}"
        )),
        other => other,
    })?;
    profiles.profiles.insert(
        global.profile.clone(),
        Profile {
            api: api.trim_end_matches('/').to_owned(),
            token,
            probe_v4: probes.v4,
            probe_v6: probes.v6,
        },
    );
    profiles.save(&path)?;
    out.result(
        &json!({"profile": global.profile, "api": api, "me": me}),
        || {
            format!(
                "Signed in to {api} as {} ({}); profile {:?} saved in {}",
                me.user.email,
                me.organization.name,
                global.profile,
                path.display()
            )
        },
    );
    Ok(exit::OK)
}

/// Hidden input on a terminal; one line of stdin otherwise (`… | entryguard login`).
fn read_token() -> Result<String, CliError> {
    let token = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("Personal API token (Settings → API tokens in the web app): ")
            .map_err(|e| CliError::Local(format!("cannot read the token: {e}")))?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::Local(format!("cannot read the token from stdin: {e}")))?;
        line
    };
    let token = token.trim().to_owned();
    if token.is_empty() {
        return Err(CliError::Local("no token given".into()));
    }
    Ok(token)
}

fn logout(global: &Global, out: &Out) -> Result<u8, CliError> {
    let path = config::path()?;
    let mut profiles = Profiles::load(&path)?;
    let removed = profiles.profiles.remove(&global.profile).is_some();
    if removed {
        profiles.save(&path)?;
    }
    out.result(
        &json!({"profile": global.profile, "removed": removed}),
        || {
            if removed {
                format!("Signed out (profile {:?} removed).", global.profile)
            } else {
                format!("Profile {:?} was not signed in.", global.profile)
            }
        },
    );
    Ok(exit::OK)
}

#[derive(Serialize)]
struct StatusView {
    me: Me,
    sessions: Vec<Session>,
}

async fn status(global: &Global, all: bool, out: &Out) -> Result<u8, CliError> {
    let client = signed_in(global)?;
    let me = client.me().await?;
    let mut sessions = client.sessions().await?;
    if !all {
        sessions.retain(|s| s.is_live());
    }
    let view = StatusView { me, sessions };
    out.result(&view, || {
        let mut text = format!(
            "{} — {} ({} plan), {} resource(s)",
            view.me.user.email,
            view.me.organization.name,
            types::wire(&view.me.organization.tier),
            view.me.resource_count
        );
        if view.sessions.is_empty() {
            text.push_str(if all {
                "\nNo sessions."
            } else {
                "\nNo live sessions."
            });
        }
        for s in &view.sessions {
            let open = s
                .resources
                .iter()
                .filter(|e| e.status == types::EntryStatus::Applied)
                .count();
            text.push_str(&format!(
                "\n{}  {:<9}  until {}  {}/{} open",
                s.id,
                types::wire(&s.status),
                local(s.expires_at),
                open,
                s.resources.len()
            ));
            for f in s.failures() {
                text.push_str(&format!(
                    "\n    FAIL {} ({}): {}",
                    f.resource_name,
                    f.ip,
                    f.error.as_deref().unwrap_or("no reason given")
                ));
            }
        }
        text
    });
    Ok(exit::OK)
}

async fn live(client: &Client) -> Result<Vec<Session>, CliError> {
    let mut sessions = client.sessions().await?;
    sessions.retain(|s| s.is_live());
    Ok(sessions)
}

/// The session `id`, or the only live one.
async fn chosen(client: &Client, id: Option<String>) -> Result<Session, CliError> {
    if let Some(id) = id {
        return client.session(&id).await;
    }
    let mut live = live(client).await?;
    match live.len() {
        1 => Ok(live.remove(0)),
        0 => Err(CliError::Local("no live session".into())),
        n => Err(CliError::Local(format!(
            "{n} live sessions: name one ({}) or use --all",
            live.iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// The requested duration, or the shortest the caller's plan and roles allow.
async fn duration(client: &Client, hours: Option<u32>) -> Result<u32, CliError> {
    if let Some(h) = hours {
        return Ok(h);
    }
    let me = client.me().await?;
    me.allowed_durations_hours
        .iter()
        .min()
        .map(|h| u32::from(*h))
        .ok_or_else(|| CliError::Local("your plan offers no session duration".into()))
}

fn local(t: types::Timestamp) -> String {
    t.with_timezone(&chrono::Local)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}
