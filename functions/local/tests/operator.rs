//! The operator's command, run as the real `entryguard-admin` binary against a local runner's
//! data directory: listing, plans, suspension (ending live sessions) and resumption, and a clear
//! refusal while the runner holds the directory.

use std::path::Path;
use std::process::Command;

use entryguard::domain::model::{Email, OrgStatus};
use entryguard::domain::session::SessionStatus;
use entryguard::domain::tier::{Hours, Tier};
use entryguard_local::{drain_once, Config, Runner};
use serde_json::Value;

/// Runs `entryguard-admin --data-dir DIR ARGS…`: (exit success, stdout, stderr).
fn admin(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_entryguard-admin"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env("USER", "ops")
        .output()
        .expect("the operator command runs");
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

#[tokio::test]
async fn the_operator_sets_plans_and_suspends_through_the_data_directory() {
    let dir = std::env::temp_dir().join(format!("entryguard-operator-{}", uuid::Uuid::new_v4()));
    let member: Email = "dev@example.com".parse().unwrap();

    let (session_id, org_id) = {
        let runner = Runner::build(Config::headless(dir.clone())).await.unwrap();
        let token = runner.app.dev_login(&member, None).await.unwrap();
        let who = runner.app.authenticate(&token, None).await.unwrap();
        let s = runner
            .app
            .start_session(&who, "203.0.113.7".parse().unwrap(), Hours::new(2).unwrap())
            .await
            .unwrap();
        let queue = runner.embedded_queue().unwrap();
        while drain_once(&runner.app, queue).await > 0 {}
        let s = runner.app.store.get_session(s.id).await.unwrap().unwrap();
        assert_eq!(s.status(), SessionStatus::Active);

        // While the runner holds the directory the command says so, and changes nothing.
        let (ok, _, err) = admin(&dir, &["orgs"]);
        assert!(!ok);
        assert!(err.contains("stop the runner first"), "{err}");
        (s.id, who.org.id)
    };

    let (ok, out, err) = admin(&dir, &["orgs", "--json"]);
    assert!(ok, "{err}");
    let orgs = json(&out);
    assert_eq!(orgs.as_array().unwrap().len(), 1);
    assert_eq!(orgs[0]["id"], org_id.to_string());
    assert_eq!(orgs[0]["tier"], "TEAM");
    assert_eq!(orgs[0]["status"], "ACTIVE");
    assert_eq!(orgs[0]["users"], 2);
    let (ok, table, _) = admin(&dir, &["orgs"]);
    assert!(ok);
    assert!(
        table.contains("Demo Org") && table.contains("TEAM"),
        "{table}"
    );

    let org = org_id.to_string();
    let (ok, out, err) = admin(&dir, &["set-plan", &org, "free"]);
    assert!(ok, "{err}");
    assert!(out.contains("is on the FREE plan"), "{out}");
    let (ok, _, err) = admin(&dir, &["set-plan", &org, "GOLD"]);
    assert!(!ok);
    assert!(err.contains("is not a tier"), "{err}");
    let (ok, _, err) = admin(
        &dir,
        &["set-plan", &uuid::Uuid::new_v4().to_string(), "FREE"],
    );
    assert!(!ok);
    assert!(err.contains("no organization has the id"), "{err}");
    let (ok, _, err) = admin(&dir, &["suspend", &org, "--reason", "  "]);
    assert!(!ok);
    assert!(err.contains("--reason"), "{err}");

    let (ok, out, err) = admin(&dir, &["suspend", &org, "--reason", "unpaid", "--json"]);
    assert!(ok, "{err}");
    assert_eq!(json(&out)["sessionsStopped"], 1);

    // The runner starts again and removes the suspended organization's rules.
    let runner = Runner::build(Config::headless(dir.clone())).await.unwrap();
    let queue = runner.embedded_queue().unwrap();
    while drain_once(&runner.app, queue).await > 0 {}
    let s = runner
        .app
        .store
        .get_session(session_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.status(), SessionStatus::Cancelled);
    let stored = runner.app.store.get_org(org_id).await.unwrap().unwrap();
    assert_eq!(stored.tier, Tier::Free);
    assert_eq!(stored.status, OrgStatus::Suspended);
    let audit = runner
        .app
        .store
        .list_audit(
            org_id,
            &entryguard::domain::audit::AuditQuery {
                limit: 50,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let messages: Vec<&str> = audit.items.iter().map(|e| e.message.as_str()).collect();
    assert!(
        messages.contains(&"The operator (local operator ops) changed the plan from TEAM to FREE"),
        "{messages:?}"
    );
    assert!(
        messages.contains(&"The operator (local operator ops) suspended the organization: unpaid"),
        "{messages:?}"
    );
    drop(runner);

    let (ok, out, err) = admin(&dir, &["resume", &org]);
    assert!(ok, "{err}");
    assert!(out.contains("is active again"), "{out}");
    let (ok, _, err) = admin(&dir.join("missing"), &["orgs"]);
    assert!(!ok);
    assert!(err.contains("no EntryGuard data in"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
