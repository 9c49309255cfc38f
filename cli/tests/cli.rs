//! The real `entryguard` binary against a local runner: sign-in and profiles, sessions started
//! and watched to each outcome with its exit code, `exec` ending its session however the
//! command ends, `--json` output, and a revoked token.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::process::Command;

use entryguard_cli::types::{Me, Session, SessionExt, SessionStatus};
use entryguard_local::Backend;
use entryguard_tests::server::{TestServer, ADMIN, MEMBER, REGION};

const BIN: &str = env!("CARGO_BIN_EXE_entryguard");

/// A runner, a member's personal API token, and a private config directory for the CLI.
struct Env {
    s: TestServer,
    admin: String,
    /// The member's web session (for checks through the API).
    member: String,
    /// The member's personal API token and its id.
    token: String,
    token_id: String,
    home: PathBuf,
}

impl Env {
    async fn new() -> Self {
        Self::on(TestServer::start().await).await
    }

    async fn on(s: TestServer) -> Self {
        let admin = s.login(ADMIN).await;
        // No concurrency limit: the tests leave ended sessions behind at their own pace.
        s.set_plan(&admin, "BUSINESS").await;
        let member = s.login(MEMBER).await;
        let created = s
            .post(&member, "/api/me/tokens", json!({"name": "cli tests"}))
            .await
            .ok(201)
            .clone();
        let home = std::env::temp_dir().join(format!("entryguard-cli-{}", uuid()));
        std::fs::create_dir_all(&home).unwrap();
        Self {
            admin,
            member,
            token: created["token"].as_str().unwrap().to_owned(),
            token_id: created["id"].as_str().unwrap().to_owned(),
            home,
            s,
        }
    }

    /// The CLI with only this test's config directory and no ENTRYGUARD_* from outside.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join("config"))
            .env_remove("ENTRYGUARD_TOKEN")
            .env_remove("ENTRYGUARD_API")
            .env_remove("ENTRYGUARD_PROFILE")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        c
    }

    async fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd(args).output().await.expect("the CLI runs");
        eprintln!(
            "$ entryguard {}\n  exit {:?}\n  stdout: {}\n  stderr: {}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    async fn login(&self) {
        let out = self
            .cmd(&["login", "--api", &self.s.base])
            .env("ENTRYGUARD_TOKEN", &self.token)
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }

    fn profile_file(&self) -> PathBuf {
        self.home.join("config/entryguard/profiles.json")
    }

    /// The member's sessions as the API reports them.
    async fn sessions(&self) -> Vec<Value> {
        self.s
            .get(Some(&self.member), "/api/sessions")
            .await
            .ok(200)
            .as_array()
            .unwrap()
            .clone()
    }

    /// Waits until no session of the member holds or is about to hold rules.
    async fn all_ended(&self) -> Vec<Value> {
        self.s
            .eventually("every session to have ended", || async {
                let sessions = self.sessions().await;
                if sessions.iter().all(|s| {
                    ["CANCELLED", "EXPIRED", "FAILED"].contains(&s["status"].as_str().unwrap())
                }) {
                    Ok(sessions)
                } else {
                    Err(format!("{sessions:?}"))
                }
            })
            .await
    }

    /// Adds a resource on a security group the simulated cloud does not have to the member's
    /// role: every session of theirs ends PARTIAL. Returns the resource's id.
    async fn add_ghost_resource(&self) -> String {
        let s = &self.s;
        let credential = s.get(Some(&self.admin), "/api/admin/credentials").await;
        let credential = credential.ok(200).as_array().unwrap()[0].clone();
        let r = s
            .post(
                &self.admin,
                "/api/admin/resources",
                json!({
                    "name": "ghost",
                    "credentialId": credential["id"],
                    "securityGroupId": "sg-0123456789abcdef0",
                    "region": REGION,
                    "ports": [{"protocol": "tcp", "fromPort": 8443, "toPort": 8443}],
                }),
            )
            .await;
        let ghost = r.ok(201)["id"].as_str().unwrap().to_owned();
        let role = s
            .find(&self.admin, "/api/admin/roles", "name", "Developers")
            .await;
        let mut ids = role["resourceIds"].as_array().unwrap().clone();
        ids.push(json!(ghost));
        s.patch(
            &self.admin,
            &format!("/api/admin/roles/{}", role["id"].as_str().unwrap()),
            json!({ "resourceIds": ids }),
        )
        .await
        .ok(200);
        ghost
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.home);
    }
}

fn uuid() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_out(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {}", stdout(o)))
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread")]
async fn login_profiles_and_logout() {
    let e = Env::new().await;

    let out = e.run(&["status"]).await;
    assert_eq!(out.status.code(), Some(5), "not signed in yet");
    assert!(
        stderr(&out).contains("entryguard login"),
        "{}",
        stderr(&out)
    );
    let out = e.run(&["start", "--hours", "two"]).await;
    assert_eq!(out.status.code(), Some(2), "a bad command line");
    let out = e.run(&["stop", "some-id", "--all"]).await;
    assert_eq!(out.status.code(), Some(2), "an id and --all");

    // A wrong token is refused at login and nothing is stored.
    let out = e
        .cmd(&["login", "--api", &e.s.base])
        .env("ENTRYGUARD_TOKEN", "egp_not-a-real-token")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("refused this token"),
        "{}",
        stderr(&out)
    );
    assert!(!e.profile_file().exists());

    // The token on stdin (as a script pipes it), the profile stored owner-only.
    let mut child = e
        .cmd(&["login", "--api", &e.s.base, "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use tokio::io::AsyncWriteExt;
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{}\n", e.token).as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let login = json_out(&out);
    assert_eq!(login["me"]["user"]["email"], json!(MEMBER));
    assert_eq!(login["profile"], json!("default"));
    #[cfg(unix)]
    assert_eq!(mode(&e.profile_file()), 0o600);
    let stored: Value =
        serde_json::from_str(&std::fs::read_to_string(e.profile_file()).unwrap()).unwrap();
    assert_eq!(stored["profiles"]["default"]["api"], json!(e.s.base));

    let out = e.run(&["status", "--json"]).await;
    assert_eq!(out.status.code(), Some(0));
    let status = json_out(&out);
    assert_eq!(status["me"]["user"]["email"], json!(MEMBER));
    assert_eq!(status["sessions"], json!([]));

    // A second profile for another deployment; ENTRYGUARD_API and ENTRYGUARD_TOKEN override
    // a stored one (as in a CI job).
    let out = e.run(&["--profile", "staging", "status"]).await;
    assert_eq!(out.status.code(), Some(5));
    let out = e
        .cmd(&["--profile", "staging", "status", "--json"])
        .env("ENTRYGUARD_API", &e.s.base)
        .env("ENTRYGUARD_TOKEN", &e.token)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = e
        .cmd(&["status"])
        .env("ENTRYGUARD_API", "http://127.0.0.1:9")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "the overriding address is used");
    assert!(stderr(&out).contains("cannot reach"), "{}", stderr(&out));

    let out = e.run(&["logout"]).await;
    assert_eq!(out.status.code(), Some(0));
    let out = e.run(&["status", "--json"]).await;
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(json_out(&out)["error"]["code"], json!("NOT_SIGNED_IN"));
}

#[tokio::test(flavor = "multi_thread")]
async fn start_wait_exit_codes_stop_and_extend() {
    let e = Env::new().await;
    e.login().await;

    // ACTIVE: exit 0, the session as JSON.
    let out = e.run(&["start", "--wait", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let active: Session = serde_json::from_value(json_out(&out)).unwrap();
    assert_eq!(active.status, SessionStatus::Active);
    assert_eq!(active.resource_count, 3);

    // Not on a terminal, progress comes as plain lines, one per resource.
    let out = e.run(&["start", "--wait"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let progress = stderr(&out);
    assert!(
        !progress.contains('\r') && !progress.contains('\x1b'),
        "{progress}"
    );
    assert!(progress.matches("APPLIED").count() >= 3, "{progress}");
    assert!(stdout(&out).contains("is ACTIVE until"), "{}", stdout(&out));

    let out = e
        .run(&["extend", &active.id, "--hours", "1", "--json"])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let extended: Session = serde_json::from_value(json_out(&out)).unwrap();
    assert_eq!(
        extended.expires_at - active.expires_at,
        chrono::Duration::hours(1)
    );

    // Two live sessions: `stop` without an id will not guess.
    let out = e.run(&["stop"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("2 live sessions"), "{}", stderr(&out));

    let out = e.run(&["stop", "--all", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stopped: Vec<Session> = serde_json::from_value(json_out(&out)).unwrap();
    assert_eq!(stopped.len(), 2);
    e.all_ended().await;
    let out = e.run(&["ls", "--json"]).await;
    assert_eq!(json_out(&out)["sessions"], json!([]));
    let out = e.run(&["ls", "--all", "--json"]).await;
    assert_eq!(json_out(&out)["sessions"].as_array().unwrap().len(), 2);

    // An API error: its message and code, no stack trace.
    let out = e.run(&["start", "--hours", "5"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.starts_with("entryguard: "), "{err}");
    assert!(err.contains("(VALIDATION_FAILED)"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // PARTIAL: exit 3, with what failed and why.
    e.add_ghost_resource().await;
    let out = e.run(&["start", "--wait"]).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is PARTIAL: ghost"),
        "{}",
        stderr(&out)
    );
    let out = e.run(&["stop", "--quiet"]).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "");
    e.all_ended().await;

    let out = e.run(&["start", "--wait", "--json"]).await;
    assert_eq!(out.status.code(), Some(3));
    let err = json_out(&out);
    assert_eq!(err["error"]["code"], json!("SESSION_PARTIAL"));
    let partial: Session = serde_json::from_value(err["error"]["session"].clone()).unwrap();
    let failed: Vec<_> = partial.failures().collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].resource_name, "ghost");
    assert!(failed[0].error.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_with_nothing_reachable_fails_with_exit_4() {
    let e = Env::new().await;
    e.login().await;
    let ghost = e.add_ghost_resource().await;
    let role =
        e.s.find(&e.admin, "/api/admin/roles", "name", "Developers")
            .await;
    e.s.patch(
        &e.admin,
        &format!("/api/admin/roles/{}", role["id"].as_str().unwrap()),
        json!({ "resourceIds": [ghost] }),
    )
    .await
    .ok(200);
    let out = e.run(&["start", "--wait"]).await;
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("FAILED: ghost"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_ends_its_session_however_the_command_ends() {
    let e = Env::new().await;
    e.login().await;

    // Succeeds: the command's output and code pass through; its session ends.
    let out = e
        .run(&["exec", "--", "sh", "-c", "echo hello from inside"])
        .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "hello from inside\n");
    let ended = e.all_ended().await;
    assert_eq!(ended.len(), 1);

    // Fails: its exit code is the CLI's.
    let out = e
        .run(&["exec", "--quiet", "--", "sh", "-c", "exit 7"])
        .await;
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert_eq!(e.all_ended().await.len(), 2);

    // A command that cannot start still ends the session.
    let out = e.run(&["exec", "--", "/nonexistent/command"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("cannot run /nonexistent/command"));
    assert_eq!(e.all_ended().await.len(), 3);

    // Interrupted: SIGTERM to the CLI reaches the command, and the session ends.
    let marker = e.home.join("running");
    let child = e
        .cmd(&[
            "exec",
            "--",
            "sh",
            "-c",
            "touch \"$0\"; exec sleep 30",
            marker.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    e.s.eventually("the command to run", || async {
        if marker.exists() {
            Ok(())
        } else {
            Err("not yet".to_owned())
        }
    })
    .await;
    let live: Vec<Value> = e
        .sessions()
        .await
        .into_iter()
        .filter(|s| s["status"] == json!("ACTIVE"))
        .collect();
    assert_eq!(live.len(), 1, "the command runs inside an ACTIVE session");
    let pid = child.id().unwrap().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("the CLI ends soon after SIGTERM")
        .unwrap();
    assert_eq!(out.status.code(), Some(128 + 15), "{}", stderr(&out));
    let ended = e.all_ended().await;
    assert_eq!(ended.len(), 4);
    assert_eq!(ended[0]["id"], live[0]["id"]);
    assert_eq!(ended[0]["status"], json!("CANCELLED"));

    // SIGTERM while the session is still being opened: it is stopped all the same.
    let child = e.cmd(&["exec", "--", "true"]).spawn().unwrap();
    let pid = child.id().unwrap().to_string();
    e.s.eventually("the session to be started", || async {
        if e.sessions().await.len() == 5 {
            Ok(())
        } else {
            Err("not yet".to_owned())
        }
    })
    .await;
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert_eq!(e.all_ended().await.len(), 5);

    // A live ACTIVE session is reused, and left running.
    let out = e.run(&["start", "--wait", "--quiet"]).await;
    assert_eq!(out.status.code(), Some(0));
    let out = e.run(&["exec", "--", "true"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let sessions = e.sessions().await;
    assert_eq!(sessions.len(), 6);
    assert_eq!(sessions[0]["status"], json!("ACTIVE"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_token_says_so() {
    let e = Env::new().await;
    e.login().await;
    let out = e.run(&["status"]).await;
    assert_eq!(out.status.code(), Some(0));
    e.s.delete(&e.member, &format!("/api/me/tokens/{}", e.token_id))
        .await;
    let out = e.run(&["status"]).await;
    assert_eq!(out.status.code(), Some(5));
    assert!(
        stderr(&out).contains("expired or revoked"),
        "{}",
        stderr(&out)
    );
    let out = e.run(&["start", "--json"]).await;
    assert_eq!(out.status.code(), Some(5));
    assert_eq!(json_out(&out)["error"]["code"], json!("UNAUTHENTICATED"));
}

/// The API's real answers round-trip unchanged through the types the CLI reads them with (the
/// API's own, from `entryguard::wire`, and the CLI's error envelope): nothing the API sends is
/// lost or misread on the way in.
#[tokio::test(flavor = "multi_thread")]
async fn real_answers_round_trip_through_the_cli_types() {
    let e = Env::new().await;
    e.add_ghost_resource().await;
    fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(what: &str, v: &Value) {
        let typed: T = serde_json::from_value(v.clone())
            .unwrap_or_else(|err| panic!("{what} does not parse: {err}: {v}"));
        assert_eq!(&serde_json::to_value(typed).unwrap(), v, "{what} drifted");
    }
    let me = e.s.get(Some(&e.token), "/api/me").await;
    round_trip::<Me>("GET /api/me", me.ok(200));
    let started = e.s.start_session(&e.member, 1).await;
    round_trip::<Session>("a PENDING session", &started);
    let id = started["id"].as_str().unwrap();
    let partial = e.s.wait_status(&e.member, id, "PARTIAL").await;
    round_trip::<Session>("a PARTIAL session", &partial);
    // Stopped by an administrator: `stoppedBy` is filled in.
    let r =
        e.s.call(
            reqwest::Method::POST,
            Some(&e.admin),
            &format!("/api/admin/sessions/{id}/stop"),
            None,
        )
        .await;
    r.ok(202);
    let stopped =
        e.s.get(Some(&e.member), &format!("/api/sessions/{id}"))
            .await;
    let stopped = stopped.ok(200);
    assert!(!stopped["stoppedBy"].is_null(), "{stopped}");
    round_trip::<Session>("a session stopped by an administrator", stopped);
    let list = e.s.get(Some(&e.member), "/api/sessions").await;
    round_trip::<Vec<Session>>("GET /api/sessions", list.ok(200));
    let err =
        e.s.post(&e.member, "/api/sessions", json!({"durationHours": 5}))
            .await;
    err.err(400, "VALIDATION_FAILED");
    round_trip::<entryguard_cli::types::ErrorBody>("an error", &err.json);
}

/// The session's addresses, as "address/version".
fn ip_addresses(session: &Value) -> Vec<String> {
    session["ipAddresses"]
        .as_array()
        .unwrap_or_else(|| panic!("no ipAddresses: {session}"))
        .iter()
        .map(|ip| {
            format!(
                "{}/{}",
                ip["address"].as_str().unwrap(),
                ip["version"].as_str().unwrap()
            )
        })
        .collect()
}

/// Starts a session through the CLI (`start --json` plus `extra`), and returns it once it is
/// ACTIVE, with the CLI's stderr.
async fn start_active(e: &Env, extra: &[&str]) -> (Value, String) {
    let mut args = vec!["start", "--wait", "--json"];
    args.extend_from_slice(extra);
    let out = e.run(&args).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let session = json_out(&out);
    assert_eq!(session["status"], json!("ACTIVE"), "{session}");
    (session, stderr(&out))
}

async fn stop_all(e: &Env) {
    let out = e.run(&["stop", "--all", "--quiet"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    e.all_ended().await;
}

/// With the runner on 127.0.0.1 and [::1], `start` proves the other family's address as the web
/// app does, and the session opens both: one rule per resource × address.
#[tokio::test(flavor = "multi_thread")]
async fn start_opens_the_ipv4_and_the_ipv6_address_on_a_dual_stack_runner() {
    let e = Env::on(TestServer::start_dual_stack(Backend::Embedded).await).await;
    let base_v6 = e.s.base_v6.clone().expect("a dual-stack runner");
    // Signed in over IPv4 only: the IPv6 probe comes from the runner's /config.json.
    e.login().await;
    let baseline = e.s.firewall().await;
    let (session, notes) = start_active(&e, &[]).await;
    assert_eq!(
        ip_addresses(&session),
        ["127.0.0.1/v4", "::1/v6"],
        "{notes}"
    );
    assert!(
        !notes.contains("note:"),
        "both families were found: {notes}"
    );
    let entries = session["resources"].as_array().unwrap();
    assert_eq!(
        entries.len(),
        6,
        "three resources × two addresses: {session}"
    );
    assert!(
        entries.iter().all(|r| r["status"] == json!("APPLIED")),
        "{session}"
    );
    let rules: Vec<String> =
        e.s.firewall()
            .await
            .values()
            .flatten()
            .map(|(_, _, _, cidr)| cidr.clone())
            .collect();
    assert_eq!(
        rules.iter().filter(|c| *c == "127.0.0.1/32").count(),
        3,
        "{rules:?}"
    );
    assert_eq!(
        rules.iter().filter(|c| *c == "::1/128").count(),
        3,
        "{rules:?}"
    );
    stop_all(&e).await;
    e.s.wait_firewall("both families' rules removed", &baseline)
        .await;

    // Started over IPv6: the IPv4 address is the proven one.
    let (session, _) = start_active(&e, &["--api", &base_v6]).await;
    assert_eq!(ip_addresses(&session), ["::1/v6", "127.0.0.1/v4"]);
    stop_all(&e).await;

    // A probe that fails is a note, not an error: here the IPv6 probe is pointed at the IPv4
    // address, which its IPv6-only connection cannot reach, and the flag wins over the runner's
    // /config.json.
    let (session, notes) = start_active(&e, &["--probe-v6", &e.s.base]).await;
    assert_eq!(ip_addresses(&session), ["127.0.0.1/v4"]);
    assert!(
        notes.contains(&format!(
            "note: no IPv6 address found at {}/api/address (",
            e.s.base
        )),
        "{notes}"
    );
    stop_all(&e).await;

    // --no-probes: the address of the start request only, silently.
    let (session, notes) = start_active(&e, &["--no-probes"]).await;
    assert_eq!(ip_addresses(&session), ["127.0.0.1/v4"]);
    assert!(!notes.contains("note:"), "{notes}");
    stop_all(&e).await;
}

/// `login --probe-v4/--probe-v6` stores the probe hosts in the profile; `start` uses them, a
/// flag overrides them, and `exec` proves both addresses too.
#[tokio::test(flavor = "multi_thread")]
async fn probe_hosts_stored_in_the_profile_are_used_by_start_and_exec() {
    let e = Env::on(TestServer::start_dual_stack(Backend::Embedded).await).await;
    let base_v6 = e.s.base_v6.clone().expect("a dual-stack runner");
    // Nothing listens on port 9 of [::1]: a stored probe host that does not answer.
    let out = e
        .cmd(&["login", "--api", &e.s.base, "--probe-v6", "http://[::1]:9/"])
        .env("ENTRYGUARD_TOKEN", &e.token)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stored: Value =
        serde_json::from_str(&std::fs::read_to_string(e.profile_file()).unwrap()).unwrap();
    assert_eq!(
        stored["profiles"]["default"]["probe_v6"],
        json!("http://[::1]:9")
    );
    assert!(
        stored["profiles"]["default"].get("probe_v4").is_none(),
        "{stored}"
    );

    let (session, notes) = start_active(&e, &[]).await;
    assert_eq!(ip_addresses(&session), ["127.0.0.1/v4"]);
    assert!(notes.contains("http://[::1]:9/api/address"), "{notes}");
    stop_all(&e).await;

    let (session, _) = start_active(&e, &["--probe-v6", &base_v6]).await;
    assert_eq!(ip_addresses(&session), ["127.0.0.1/v4", "::1/v6"]);
    stop_all(&e).await;

    // Logging in again without the flags keeps the stored probe hosts; with one, replaces it.
    let out = e
        .cmd(&["login", "--probe-v6", &base_v6])
        .env("ENTRYGUARD_TOKEN", &e.token)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = e
        .cmd(&["login"])
        .env("ENTRYGUARD_TOKEN", &e.token)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stored: Value =
        serde_json::from_str(&std::fs::read_to_string(e.profile_file()).unwrap()).unwrap();
    assert_eq!(stored["profiles"]["default"]["probe_v6"], json!(base_v6));

    // exec: the command runs inside a session of both addresses.
    let out = e.run(&["exec", "--quiet", "--", "true"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let ended = e.all_ended().await;
    assert_eq!(ip_addresses(&ended[0]), ["127.0.0.1/v4", "::1/v6"]);

    // Not a URL: a bad command line.
    let out = e.run(&["start", "--probe-v4", "v4.example.com"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
