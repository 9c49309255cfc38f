//! `entryguard exec -- COMMAND`: the command runs inside a session, and the session it started
//! ends with it, however it ends.

use std::io::IsTerminal;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};

use crate::client::Client;
use crate::error::{exit, CliError};
use crate::types::{wire, SessionExt, SessionStatus};
use crate::{watch, Out};

pub async fn run(
    client: &Client,
    hours: Option<u32>,
    new: bool,
    no_probes: bool,
    timeout: Duration,
    command: &[String],
    out: &Out,
) -> Result<u8, CliError> {
    let signals = Signals::install()?;
    let reused = if new {
        None
    } else {
        crate::live(client)
            .await?
            .into_iter()
            .find(|s| s.status == SessionStatus::Active)
    };
    let session = match reused {
        Some(s) => {
            out.note(&format!("Using live session {}", s.id));
            s
        }
        None => {
            let hours = crate::duration(client, hours).await?;
            let started = crate::start(client, hours, no_probes, out).await?;
            out.note(&format!("Session {} started; opening…", started.id));
            let id = started.id.clone();
            let settled = tokio::select! {
                s = watch::until_settled(client, started, timeout, out.progress()) => s,
                sig = signals.next() => {
                    stop(client, &id, out).await;
                    return Ok(128 + sig as u8);
                }
            };
            let settled = match settled {
                Ok(s) => s,
                Err(e) => {
                    stop(client, &id, out).await;
                    return Err(e);
                }
            };
            match settled.status {
                SessionStatus::Active => {}
                SessionStatus::Partial => {
                    for f in settled.failures() {
                        out.note(&format!(
                            "warning: {} ({}) is not open: {}",
                            f.resource_name,
                            f.ip,
                            f.error.as_deref().unwrap_or("no reason given")
                        ));
                    }
                }
                _ => {
                    stop(client, &id, out).await;
                    return Err(CliError::Failed {
                        id,
                        session: Box::new(settled),
                    });
                }
            }
            return run_and_stop(client, Some(&settled.id), command, signals, out).await;
        }
    };
    let _ = session;
    run_and_stop(client, None, command, signals, out).await
}

/// Runs the command; stops `owned` (the session this run started) when it ends.
async fn run_and_stop(
    client: &Client,
    owned: Option<&str>,
    command: &[String],
    signals: Signals,
    out: &Out,
) -> Result<u8, CliError> {
    let (program, args) = command.split_first().expect("clap requires a command");
    let spawned = tokio::process::Command::new(program).args(args).spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            if let Some(id) = owned {
                stop(client, id, out).await;
            }
            return Err(CliError::Local(format!("cannot run {program}: {e}")));
        }
    };
    // A terminal sends Ctrl-C to the whole foreground group, the command included: only a
    // signal meant for this process alone is passed on.
    let forward_int = !std::io::stdin().is_terminal();
    let status = loop {
        tokio::select! {
            status = child.wait() => break status,
            sig = signals.next() => {
                if sig != libc::SIGINT || forward_int {
                    if let Some(pid) = child.id() {
                        // SAFETY: kill(2) on the child's pid, which is still ours to reap.
                        unsafe { libc::kill(pid as libc::pid_t, sig) };
                    }
                }
            }
        }
    };
    if let Some(id) = owned {
        stop(client, id, out).await;
    }
    let status = status.map_err(|e| CliError::Local(format!("waiting for {program}: {e}")))?;
    use std::os::unix::process::ExitStatusExt;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => (code & 0xff) as u8,
        (None, Some(sig)) => 128u8.wrapping_add(sig as u8),
        (None, None) => exit::ERROR,
    })
}

async fn stop(client: &Client, id: &str, out: &Out) {
    match client.stop(id).await {
        Ok(s) => out.note(&format!("Session {} stopped ({})", s.id, wire(&s.status))),
        Err(e) => eprintln!("entryguard: could not stop session {id}: {e}"),
    }
}

/// SIGINT, SIGTERM and SIGHUP, caught from the start so that none kills the CLI before it
/// stops the session it started.
struct Signals {
    int: tokio::sync::Mutex<tokio::signal::unix::Signal>,
    term: tokio::sync::Mutex<tokio::signal::unix::Signal>,
    hup: tokio::sync::Mutex<tokio::signal::unix::Signal>,
}

impl Signals {
    fn install() -> Result<Self, CliError> {
        let make = |kind: SignalKind| {
            signal(kind)
                .map(tokio::sync::Mutex::new)
                .map_err(|e| CliError::Local(format!("cannot handle signals: {e}")))
        };
        Ok(Self {
            int: make(SignalKind::interrupt())?,
            term: make(SignalKind::terminate())?,
            hup: make(SignalKind::hangup())?,
        })
    }

    /// The next signal's number.
    async fn next(&self) -> i32 {
        let (mut int, mut term, mut hup) = (
            self.int.lock().await,
            self.term.lock().await,
            self.hup.lock().await,
        );
        tokio::select! {
            _ = int.recv() => libc::SIGINT,
            _ = term.recv() => libc::SIGTERM,
            _ = hup.recv() => libc::SIGHUP,
        }
    }
}
