//! Following a session until it settles: each resource's progress as it happens, as a live line
//! on a terminal and as plain lines otherwise.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::error::CliError;
use crate::types::{wire, EntryStatus, Session, SessionStatus};

const POLL: Duration = Duration::from_millis(400);

/// Polls the session until it is no longer PENDING and returns it. `show`: print progress on
/// stderr.
pub async fn until_settled(
    client: &Client,
    mut session: Session,
    timeout: Duration,
    show: bool,
) -> Result<Session, CliError> {
    let live = show && std::io::stderr().is_terminal();
    let started = Instant::now();
    let mut seen: BTreeMap<(String, String), EntryStatus> = BTreeMap::new();
    let mut err = std::io::stderr().lock();
    loop {
        if show {
            if live {
                // Clears the live line before permanent ones are printed over it.
                let _ = write!(err, "\r\x1b[K");
            }
            for e in &session.resources {
                let key = (e.resource_id.clone(), e.ip.clone());
                if seen.get(&key) != Some(&e.status) {
                    seen.insert(key, e.status);
                    let reason = e
                        .error
                        .as_deref()
                        .map(|r| format!(": {r}"))
                        .unwrap_or_default();
                    let _ = writeln!(
                        err,
                        "  {} {} ({}) {}{reason}",
                        mark(e.status),
                        e.resource_name,
                        e.ip,
                        wire(&e.status)
                    );
                }
            }
            if live && session.status == SessionStatus::Pending {
                let open = session
                    .resources
                    .iter()
                    .filter(|e| e.status == EntryStatus::Applied)
                    .count();
                let _ = write!(
                    err,
                    "{} session {}: {}/{} open",
                    SPINNER[(started.elapsed().as_millis() / 100) as usize % SPINNER.len()],
                    session.id,
                    open,
                    session.resources.len()
                );
                let _ = err.flush();
            }
        }
        if session.status != SessionStatus::Pending {
            if live {
                let _ = write!(err, "\r\x1b[K");
            }
            return Ok(session);
        }
        if started.elapsed() >= timeout {
            if live {
                let _ = writeln!(err);
            }
            return Err(CliError::Local(format!(
                "session {} is still PENDING after {}s; it goes on in the background \
                 (`entryguard stop {}` ends it)",
                session.id,
                timeout.as_secs(),
                session.id
            )));
        }
        tokio::time::sleep(POLL).await;
        session = client.session(&session.id).await?;
    }
}

const SPINNER: [char; 4] = ['|', '/', '-', '\\'];

fn mark(status: EntryStatus) -> &'static str {
    match status {
        EntryStatus::Applied => "ok  ",
        EntryStatus::Failed => "FAIL",
        EntryStatus::Removed => "gone",
        _ => "..  ",
    }
}
