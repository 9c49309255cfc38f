//! The local runner persists to its data directory: a restart loses no session, no queued work
//! and no rule, and does not seed the demo organization twice.

use entryguard::domain::session::SessionStatus;
use entryguard::domain::tier::Hours;
use entryguard_local::{Config, Runner};

#[tokio::test]
async fn a_restart_loses_nothing() {
    let dir = std::env::temp_dir().join(format!("entryguard-restart-{}", uuid::Uuid::new_v4()));
    let member: entryguard::domain::model::Email = "dev@example.com".parse().unwrap();

    let session_id = {
        let runner = Runner::build(Config::headless(dir.clone())).await.unwrap();
        let user = runner
            .app
            .store
            .find_user_by_email(&member)
            .await
            .unwrap()
            .unwrap();
        let token = runner.app.dev_login(&member, None).await.unwrap();
        let who = runner.app.authenticate(&token, None).await.unwrap();
        assert_eq!(who.user.id, user.id);
        let s = runner
            .app
            .start_session(&who, "203.0.113.7".parse().unwrap(), Hours::new(2).unwrap())
            .await
            .unwrap();
        // Stop before any work is done: the queued tasks must survive the restart.
        assert_eq!(runner.embedded_queue().unwrap().len().unwrap(), 3);
        s.id
    };

    let runner = Runner::build(Config::headless(dir.clone())).await.unwrap();
    assert_eq!(
        runner.embedded_queue().unwrap().len().unwrap(),
        3,
        "queued work survived"
    );
    let users = runner
        .app
        .store
        .list_users(
            runner
                .app
                .store
                .find_user_by_email(&member)
                .await
                .unwrap()
                .unwrap()
                .org_id,
        )
        .await
        .unwrap();
    assert_eq!(users.len(), 2, "the demo organization was not seeded twice");
    while entryguard_local::drain_once(&runner.app, runner.embedded_queue().unwrap()).await > 0 {}
    let s = runner
        .app
        .store
        .get_session(session_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.status(), SessionStatus::Active);
    let groups = runner.sim.groups().unwrap();
    assert_eq!(groups.iter().filter(|g| g.rules.len() == 1).count(), 3);
    drop(runner);

    let runner = Runner::build(Config::headless(dir.clone())).await.unwrap();
    let groups = runner.sim.groups().unwrap();
    assert_eq!(
        groups.iter().filter(|g| g.rules.len() == 1).count(),
        3,
        "the simulated cloud kept its rules"
    );
    let s = runner
        .app
        .store
        .get_session(session_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.status(), SessionStatus::Active);
    drop(runner);
    std::fs::remove_dir_all(&dir).unwrap();
}
