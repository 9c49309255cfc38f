//! The demo organization a fresh local runner starts with.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use entryguard::app::App;
use entryguard::domain::ids::{CredentialId, OrgId, ResourceId, RoleId, UserId};
use entryguard::domain::model::{Credential, Email, Organization, Resource, Role, User};
use entryguard::domain::net::{PortRange, Region, SecurityGroupId};
use entryguard::domain::tier::Tier;
use entryguard::embedded::SimCloud;

pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const MEMBER_EMAIL: &str = "dev@example.com";
pub const REGION: &str = "eu-west-1";

/// Security groups of the simulated cloud: three used by the demo resources, two spare ones an
/// admin can add resources for.
pub const DEMO_GROUPS: [(&str, &str, &str, u16); 5] = [
    ("sg-0e1a2b3c4d5e6f701", "bastion", "Bastion host (SSH)", 22),
    (
        "sg-0e1a2b3c4d5e6f702",
        "postgres",
        "Production database",
        5432,
    ),
    (
        "sg-0e1a2b3c4d5e6f703",
        "admin-console",
        "Internal admin console",
        443,
    ),
    ("sg-0e1a2b3c4d5e6f704", "spare-1", "", 0),
    ("sg-0e1a2b3c4d5e6f705", "spare-2", "", 0),
];

/// What the runner remembers about the organizations it created, across restarts.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedFile {
    pub orgs: Vec<OrgId>,
}

const SEED_FILE: &str = "seed.json";

pub fn read_seed_file(dir: &Path) -> std::io::Result<SeedFile> {
    match std::fs::read(dir.join(SEED_FILE)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SeedFile::default()),
        Err(e) => Err(e),
    }
}

pub fn write_seed_file(dir: &Path, seed: &SeedFile) -> std::io::Result<()> {
    let tmp = dir.join(format!("{SEED_FILE}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec_pretty(seed)?)?;
    std::fs::rename(tmp, dir.join(SEED_FILE))
}

fn parse<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Debug,
{
    s.parse().expect("demo constants are valid")
}

pub fn admin_email() -> Email {
    parse(ADMIN_EMAIL)
}

/// Creates an organization (plan TEAM) and its admin, nothing else: the first start of a real
/// deployment.
pub async fn bootstrap(app: &App, admin: &Email) -> anyhow::Result<OrgId> {
    let (org, _) = org_with_admin(app, "EntryGuard", admin).await?;
    Ok(org.id)
}

async fn org_with_admin(
    app: &App,
    name: &str,
    email: &Email,
) -> anyhow::Result<(Organization, User)> {
    Ok(app
        .create_organization_with_admin(parse(name), Tier::Team, email)
        .await?)
}

/// Creates the demo organization, its users, credential, resources and role, with `admin` as
/// its administrator.
pub async fn seed_demo(app: &App, sim: &SimCloud, admin: &Email) -> anyhow::Result<OrgId> {
    let now = app.now();
    let region: Region = parse(REGION);
    for (sg, name, _, _) in DEMO_GROUPS {
        sim.create_group(&region, &parse(sg), name)?;
    }
    let (org, admin) = org_with_admin(app, "Demo Org", admin).await?;
    let member = User {
        id: UserId::from_uuid(app.ids.uuid()),
        email: parse(MEMBER_EMAIL),
        is_admin: false,
        ..admin.clone()
    };
    app.store.create_user(&member).await?;
    let credential = Credential::simulated(
        CredentialId::from_uuid(app.ids.uuid()),
        org.id,
        parse("Simulated cloud"),
        region.clone(),
        now,
    );
    app.put_doc(&credential).await?;
    let mut resource_ids = BTreeSet::new();
    for (sg, _, title, port) in DEMO_GROUPS.iter().filter(|g| g.3 != 0) {
        let resource = Resource {
            id: ResourceId::from_uuid(app.ids.uuid()),
            org_id: org.id,
            name: parse(title),
            credential_id: credential.id,
            security_group_id: parse::<SecurityGroupId>(sg),
            region: region.clone(),
            ports: vec![PortRange::tcp(*port)],
            created_at: now,
        };
        app.put_doc(&resource).await?;
        resource_ids.insert(resource.id);
    }
    let role = Role {
        id: RoleId::from_uuid(app.ids.uuid()),
        org_id: org.id,
        name: parse("Developers"),
        max_session_duration_hours: None,
        resource_ids,
        user_ids: [member.id].into(),
        created_at: now,
    };
    app.put_doc(&role).await?;
    Ok(org.id)
}
