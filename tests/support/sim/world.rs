//! One simulated deployment driven by a seed: the real use cases, worker and sweeper on the
//! embedded adapters, behind fault-injecting wrappers, with a manual clock. `run` plays a random
//! schedule, lets it reach quiescence, and checks the invariants.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use chrono::{Duration, TimeZone, Utc};

use entryguard::adapters::FirewallByProvider;
use entryguard::app::worker::Outcome;
use entryguard::app::{App, Identity};
use entryguard::domain::audit::{AuditEvent, AuditQuery, AuditType};
use entryguard::domain::ids::{CredentialId, OrgId, ResourceId, RoleId, UserId};
use entryguard::domain::model::{Credential, CredentialStatus, Organization, Resource, Role, User};
use entryguard::domain::net::{ClientIp, Ipv6Prefix, PortRange, Region, SecurityGroupId};
use entryguard::domain::rule::{CloudState, GroupRef, IngressRule, RuleKey};
use entryguard::domain::session::{EntryStatus, Session, SessionStatus};
use entryguard::domain::tier::{Hours, Tier};
use entryguard::embedded::{
    simulated_app, EmbeddedQueue, EmbeddedStore, Kv, ManualClock, SeededIds, SimCloud,
    SimulatedFirewall,
};
use entryguard::pacing::{BucketSpec, Pacer, PacerConfig};
use entryguard::ports::store::WorkItem;
use entryguard::ports::{Firewall, Store, TaskQueue};

use super::exec::{Chaos, Control, Executor, Step};
use super::faulty::{
    CloudChange, EntryHistory, EntryStatusKey, FaultyFirewall, FaultyQueue, FaultyStore,
    FirewallChaos,
};

const REGION: &str = "eu-west-1";
/// How long a received message stays hidden, as in the local runner.
const VISIBILITY_SECS: i64 = 60;
/// Security groups of the simulated account.
const GROUPS: [u32; 3] = [1, 2, 3];
/// IPv4 addresses users connect from; two users share the first.
const USER_IPS: [&str; 3] = ["203.0.113.1", "203.0.113.1", "203.0.113.2"];
/// Their IPv6 addresses: the two who share an IPv4 address do not share one (each keeps the
/// other's IPv4 rule alive, not the IPv6 one); the first and the third do, and in one /64 all
/// three do.
const USER_IPS_V6: [&str; 3] = ["2001:db8::1", "2001:db8::2", "2001:db8::1"];
/// Addresses hand-made rules use besides the users'.
const OTHER_IPS: [&str; 3] = ["198.51.100.9", "203.0.113.2", "2001:db8:ffff::9"];

fn region() -> Region {
    REGION.parse().unwrap()
}

fn sg(n: u32) -> SecurityGroupId {
    format!("sg-{n:08x}").parse().unwrap()
}

/// What a finished handler hands back to the driver.
enum Done {
    Worker { receipt: String, outcome: Outcome },
    Other,
}

/// Figures from one schedule.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub handlers: u64,
    pub crashes: u64,
    pub injected_errors: u64,
    pub deliveries: u64,
    pub duplicates: u64,
    pub sessions: u64,
    pub out_of_band: u64,
    pub cloud_calls: u64,
    pub throttled: u64,
    pub dead_letters: u64,
    pub paced: u64,
    /// Session checks delivered out of turn (early, late, for a changed session).
    pub stray_checks: u64,
    /// Changes by hand around a batch call: a duplicate of a rule it creates, the group filled
    /// so only half of it fits, a rule it revokes deleted first.
    pub by_hand: [u64; 3],
    /// Group leases taken over after running out, and group commits refused for a lost lease.
    pub group_overlaps: [u64; 2],
    /// Starts with an IPv6 address: dual-stack (from an address proof), and IPv6 only.
    pub ipv6_starts: [u64; 2],
    /// IPv6 rules EntryGuard created and revoked in the cloud.
    pub ipv6_rule_changes: [u64; 2],
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Self) {
        self.handlers += o.handlers;
        self.crashes += o.crashes;
        self.injected_errors += o.injected_errors;
        self.deliveries += o.deliveries;
        self.duplicates += o.duplicates;
        self.sessions += o.sessions;
        self.out_of_band += o.out_of_band;
        self.cloud_calls += o.cloud_calls;
        self.throttled += o.throttled;
        self.dead_letters += o.dead_letters;
        self.paced += o.paced;
        self.stray_checks += o.stray_checks;
        for (a, b) in self.by_hand.iter_mut().zip(o.by_hand) {
            *a += b;
        }
        for (a, b) in self.group_overlaps.iter_mut().zip(o.group_overlaps) {
            *a += b;
        }
        for (a, b) in self.ipv6_starts.iter_mut().zip(o.ipv6_starts) {
            *a += b;
        }
        for (a, b) in self.ipv6_rule_changes.iter_mut().zip(o.ipv6_rule_changes) {
            *a += b;
        }
    }
}

/// Which kinds of trouble a schedule may contain.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Random actions before quiescence.
    pub steps: usize,
    /// Out-of-band changes to the simulated cloud (rules deleted or added by hand).
    pub out_of_band: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            steps: 120,
            out_of_band: true,
        }
    }
}

pub struct World {
    /// The embedded store's storage, for the invariants on records the port does not list.
    kv: Kv,
    /// Group leases taken over after running out, and group commits refused for a lost lease.
    overlaps: Arc<Mutex<[u64; 2]>>,
    pub ctl: Control,
    pub app: App,
    pub store: Arc<EmbeddedStore>,
    pub queue: EmbeddedQueue,
    pub sim: SimCloud,
    pub clock: Arc<ManualClock>,
    firewall: Arc<FaultyFirewall>,
    history: Arc<Mutex<EntryHistory>>,
    exec: Executor<Done>,
    org: OrgId,
    admin: Option<Identity>,
    users: Vec<Identity>,
    /// Rules the simulation made by hand and has not deleted: EntryGuard must never touch them.
    hand_made: BTreeSet<(u32, IngressRule)>,
    /// The pacer of the simulated firewall, when this schedule paces its calls.
    pacer: Option<Arc<Pacer<Region>>>,
    resources: Vec<Resource>,
    chaos: Chaos,
    fw_chaos: FirewallChaos,
    pub stats: Stats,
    /// What happened, for the failure report.
    pub trace: Vec<String>,
}

fn managed(sim: &SimCloud, g: &GroupRef) -> BTreeSet<IngressRule> {
    sim.group(&g.region, &g.security_group_id)
        .ok()
        .flatten()
        .map(|g| {
            g.rules
                .into_iter()
                .filter(|r| r.is_managed())
                .map(|r| IngressRule {
                    ports: r.ports,
                    cidr: r.cidr,
                })
                .collect()
        })
        .unwrap_or_default()
}

impl World {
    pub async fn new(seed: u64) -> Self {
        let ctl = Control::new(seed);
        let kv = Kv::in_memory();
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap(),
        ));
        let ids = Arc::new(SeededIds::new(seed));
        let sim = SimCloud::new(kv.clone());
        let queue = EmbeddedQueue::new(kv.clone(), clock.clone(), ids.clone());
        let store = Arc::new(EmbeddedStore::new(kv.clone()));
        let history = Arc::new(Mutex::new(EntryHistory::new()));
        let overlaps = Arc::new(Mutex::new([0; 2]));
        let peek_sim = sim.clone();
        // Two thirds of the schedules model EC2's request limit (small buckets, so it bites);
        // half of those pace the calls the way the EC2 adapter does, the others meet it.
        let limited = ctl.below(3) > 0;
        let spec = BucketSpec {
            burst: 4,
            per_second: 1.0,
        };
        if limited {
            sim.limit_requests(spec, spec, clock.clone());
        }
        let pacer = (limited && ctl.chance(0.5)).then(|| {
            Arc::new(Pacer::new(
                clock.clone(),
                PacerConfig {
                    mutating: BucketSpec {
                        burst: 3,
                        per_second: 0.8,
                    },
                    describe: spec,
                    ..PacerConfig::ec2(1)
                },
                Some(seed),
            ))
        });
        let simulated = match &pacer {
            Some(p) => SimulatedFirewall::paced(sim.clone(), p.clone()),
            None => SimulatedFirewall::new(sim.clone()),
        };
        let firewall = Arc::new(FaultyFirewall {
            inner: Arc::new(FirewallByProvider {
                simulated: Some(Arc::new(simulated)),
                aws: None,
            }),
            ctl: ctl.clone(),
            clock: clock.clone(),
            chaos: Mutex::new(FirewallChaos::default()),
            peek: Box::new(move |g| managed(&peek_sim, g)),
            changes: Mutex::new(Vec::new()),
            sim: sim.clone(),
            made_by_hand: Mutex::new(Vec::new()),
            by_hand_count: Mutex::new([0; 3]),
        });
        // The simulation's own firewall (faults, latency, all-or-nothing batches) in place of
        // the plain simulated one.
        let app = App {
            firewall: firewall.clone() as Arc<dyn Firewall>,
            timer: clock.clone(),
            ..simulated_app(
                Arc::new(FaultyStore {
                    inner: store.clone(),
                    ctl: ctl.clone(),
                    history: history.clone(),
                    overlaps: overlaps.clone(),
                }),
                Arc::new(FaultyQueue {
                    inner: Arc::new(queue.clone()),
                    ctl: ctl.clone(),
                }),
                SimulatedFirewall::new(sim.clone()),
                &sim,
                clock.clone(),
                ids,
            )
        };
        let mut w = Self {
            kv,
            overlaps,
            exec: Executor::new(ctl.clone()),
            ctl,
            app,
            store,
            queue,
            sim,
            clock,
            firewall,
            history,
            org: OrgId::from_uuid(uuid::Uuid::nil()),
            admin: None,
            users: Vec::new(),
            hand_made: BTreeSet::new(),
            pacer: None,
            resources: Vec::new(),
            chaos: Chaos::default(),
            fw_chaos: FirewallChaos::default(),
            stats: Stats::default(),
            trace: Vec::new(),
        };
        w.pacer = pacer;
        w.setup().await;
        w
    }

    async fn setup(&mut self) {
        let app = &self.app;
        let now = app.now();
        let mut org = Organization::new(
            OrgId::from_uuid(app.ids.uuid()),
            "Sim Org".parse().unwrap(),
            Tier::Starter,
            now,
        );
        // IPv6 rules for a whole /64 in some schedules: then every user's IPv6 rule is one.
        if self.ctl.chance(0.3) {
            org.ipv6_prefix = Ipv6Prefix::Subnet64;
        }
        self.store.put_org(&org).await.unwrap();
        let credential = Credential {
            status: CredentialStatus::Valid,
            ..Credential::simulated(
                CredentialId::from_uuid(app.ids.uuid()),
                org.id,
                "sim".parse().unwrap(),
                region(),
                now,
            )
        };
        app.put_doc(&credential).await.unwrap();
        for g in GROUPS {
            self.sim
                .create_group(&region(), &sg(g), &format!("group-{g}"))
                .unwrap();
        }
        // Resources 0 and 2 open the same port on the same group: two holders of one rule even
        // within a single session.
        for (g, ports) in [
            (1, vec![22]),
            (2, vec![22, 443]),
            (1, vec![22]),
            (3, vec![5432]),
        ] {
            let r = Resource {
                id: ResourceId::from_uuid(app.ids.uuid()),
                org_id: org.id,
                name: format!("resource-{g}").parse().unwrap(),
                credential_id: credential.id,
                security_group_id: sg(g),
                region: region(),
                ports: ports.into_iter().map(PortRange::tcp).collect(),
                created_at: now,
            };
            app.put_doc(&r).await.unwrap();
            self.resources.push(r);
        }
        let admin = User {
            id: UserId::from_uuid(app.ids.uuid()),
            org_id: org.id,
            email: "admin@example.com".parse().unwrap(),
            is_admin: true,
            resource_ids: BTreeSet::new(),
            created_at: now,
        };
        self.store.create_user(&admin).await.unwrap();
        self.admin = Some(Identity {
            user: admin,
            org: org.clone(),
            ip: None,
        });
        for name in ["ann", "bob", "cid"] {
            let user = User {
                id: UserId::from_uuid(app.ids.uuid()),
                org_id: org.id,
                email: format!("{name}@example.com").parse().unwrap(),
                is_admin: false,
                resource_ids: BTreeSet::new(),
                created_at: now,
            };
            self.store.create_user(&user).await.unwrap();
            self.users.push(Identity {
                user,
                org: org.clone(),
                ip: None,
            });
        }
        let role = Role {
            id: RoleId::from_uuid(app.ids.uuid()),
            org_id: org.id,
            name: "everyone".parse().unwrap(),
            max_session_duration_hours: None,
            resource_ids: self.resources.iter().map(|r| r.id).collect(),
            user_ids: self.users.iter().map(|u| u.user.id).collect(),
            created_at: now,
        };
        app.put_doc(&role).await.unwrap();
        // The organization's address-proof key ring, made before the schedule: a caller that
        // finds none while another creates it waits on tokio's timer
        // (app/address_proofs.rs), which this runtime, driven by hand, does not have.
        let first = self.users[0].clone();
        app.sign_address(&first, USER_IPS_V6[0].parse().unwrap())
            .await
            .unwrap();
        // A rule someone made by hand, on a port EntryGuard also opens.
        self.hand_made(1, 22, "198.51.100.9");
        self.org = org.id;
        // Each schedule has its own mix of trouble.
        let pick =
            |ctl: &Control, options: &[f64]| options[ctl.below(options.len() as u64) as usize];
        self.chaos = Chaos {
            crash: pick(&self.ctl, &[0.0, 0.01, 0.03, 0.06]),
            error: pick(&self.ctl, &[0.0, 0.01, 0.03]),
            yield_: pick(&self.ctl, &[0.1, 0.3, 0.6]),
        };
        self.fw_chaos = FirewallChaos {
            throttle: pick(&self.ctl, &[0.0, 0.05, 0.2]),
            timeout: pick(&self.ctl, &[0.0, 0.05, 0.15]),
            denied: pick(&self.ctl, &[0.0, 0.0, 0.02]),
            by_hand: pick(&self.ctl, &[0.0, 0.1, 0.3]),
        };
        let line = format!("chaos {:?} firewall {:?}", self.chaos, self.fw_chaos);
        self.note(line);
    }

    fn trace_line(&mut self) -> &mut String {
        self.trace.push(format!("[t+{}s]", self.elapsed_secs()));
        self.trace.last_mut().unwrap()
    }

    fn note(&mut self, what: impl std::fmt::Display) {
        let _ = write!(self.trace_line(), " {what}");
    }

    fn elapsed_secs(&self) -> i64 {
        (self.app.now() - Utc.with_ymd_and_hms(2026, 11, 22, 9, 0, 0).unwrap()).num_seconds()
    }

    fn hand_made(&mut self, group: u32, port: u16, ip: &str) {
        let bits = if ip.contains(':') { 128 } else { 32 };
        let rule = IngressRule {
            ports: PortRange::tcp(port),
            cidr: format!("{ip}/{bits}").parse().unwrap(),
        };
        if self
            .sim
            .add_by_hand(&region(), &sg(group), &rule, "office VPN (hand-made)")
            .unwrap()
        {
            self.hand_made.insert((group, rule));
        }
    }

    fn set_chaos(&self, on: bool) {
        if on {
            self.ctl.set_chaos(self.chaos);
            *self.firewall.chaos.lock().unwrap() = self.fw_chaos;
        } else {
            self.ctl.set_chaos(Chaos::default());
            // Changes by hand around batches go on: they never keep the system from settling.
            *self.firewall.chaos.lock().unwrap() = FirewallChaos {
                by_hand: self.fw_chaos.by_hand,
                ..FirewallChaos::default()
            };
        }
    }

    fn spawn(&mut self, label: String, fut: impl std::future::Future<Output = Done> + 'static) {
        self.stats.handlers += 1;
        self.note(format!("spawn {label}"));
        self.exec.spawn(label, fut);
    }

    async fn user_session(&self, user: usize, nth: u64) -> Option<Session> {
        let list = self
            .store
            .list_user_sessions(self.users[user].user.id, 50)
            .await
            .unwrap();
        if list.is_empty() {
            None
        } else {
            Some(list[(nth % list.len() as u64) as usize].clone())
        }
    }

    /// A start from the user's IPv4 or IPv6 address, often with a proof of the other one (as
    /// the web app and the CLI send), so sessions hold entries of both families.
    fn spawn_start(&mut self, user: usize) {
        let app = self.app.clone();
        let who = self.users[user].clone();
        let v4: ClientIp = USER_IPS[user].parse().unwrap();
        let v6: ClientIp = USER_IPS_V6[user].parse().unwrap();
        let (own, proven) = match self.ctl.below(10) {
            0..=3 => (v4, None),
            4..=6 => (v4, Some(v6)),
            7..=8 => (v6, Some(v4)),
            _ => (v6, None),
        };
        if own == v6 || proven == Some(v6) {
            self.stats.ipv6_starts[usize::from(proven.is_none())] += 1;
        }
        let hours = [1, 2, 4, 8][self.ctl.below(4) as usize];
        self.stats.sessions += 1;
        let label = match proven {
            Some(p) => format!("start(user {user}, {hours} h, from {own} + proof of {p})"),
            None => format!("start(user {user}, {hours} h, from {own})"),
        };
        self.spawn(label, async move {
            // A proof that cannot be had (an injected fault) leaves the start with the request's
            // own address, as a failed probe does.
            let mut proofs = Vec::new();
            if let Some(p) = proven {
                if let Ok(signed) = app.sign_address(&who, p).await {
                    proofs.push(signed.proof);
                }
            }
            let _ = app
                .start_session_with_proofs(&who, own, &proofs, Hours::new(hours).unwrap())
                .await;
            Done::Other
        });
    }

    async fn spawn_stop(&mut self, user: usize) {
        let nth = self.ctl.below(4);
        if let Some(s) = self.user_session(user, nth).await {
            let app = self.app.clone();
            let who = self.users[user].clone();
            self.spawn(format!("stop({})", s.id), async move {
                let _ = app.stop_session(&who, s.id).await;
                Done::Other
            });
        }
    }

    async fn spawn_extend(&mut self, user: usize) {
        let nth = self.ctl.below(4);
        if let Some(s) = self.user_session(user, nth).await {
            let app = self.app.clone();
            let who = self.users[user].clone();
            self.spawn(format!("extend({})", s.id), async move {
                let _ = app.extend_session(&who, s.id, Hours::new(2).unwrap()).await;
                Done::Other
            });
        }
    }

    fn spawn_sweep(&mut self) {
        let app = self.app.clone();
        self.spawn("sweep".into(), async move {
            let _ = app.sweep().await;
            Done::Other
        });
    }

    /// Receives up to `n` messages; each is handled, handled twice at once (SQS's at-least-once
    /// delivery), or put back for later (delay and reordering).
    fn deliver(&mut self, n: usize, chaotic: bool) {
        let batch = self
            .queue
            .receive(n, Duration::seconds(VISIBILITY_SECS))
            .unwrap();
        for d in batch {
            self.stats.deliveries += 1;
            if chaotic && self.ctl.chance(0.15) {
                let secs = 1 + self.ctl.below(90) as i64;
                self.note(format!("delay {:?} by {secs}s", d.task));
                self.queue
                    .retry_after(&d.receipt, Duration::seconds(secs))
                    .unwrap();
                continue;
            }
            let copies = if chaotic && self.ctl.chance(0.15) {
                self.stats.duplicates += 1;
                2
            } else {
                1
            };
            for _ in 0..copies {
                let app = self.app.clone();
                let task = d.task.clone();
                let receipt = d.receipt.clone();
                self.spawn(
                    format!("worker({task:?}, receive {})", d.receive_count),
                    async move {
                        let outcome = app.process_task(&task).await;
                        Done::Worker { receipt, outcome }
                    },
                );
            }
        }
    }

    /// Polls one ready handler, and acknowledges or reschedules finished worker messages.
    fn poll_one(&mut self, chaotic: bool) -> bool {
        match self.exec.step() {
            Step::Idle => false,
            Step::Pending => true,
            Step::Crashed(_, label) => {
                self.note(format!("CRASH {label}"));
                true
            }
            Step::Done(_, Done::Other) => true,
            Step::Done(_, Done::Worker { receipt, outcome }) => {
                if chaotic && self.ctl.chance(self.chaos.crash) {
                    // Died after the work, before telling the queue.
                    self.note(format!("crash before ack {receipt}"));
                    return true;
                }
                match outcome {
                    Outcome::Done => self.queue.ack(&receipt).unwrap(),
                    Outcome::RetryAfter(delay) => self
                        .queue
                        .retry_after(&receipt, Duration::from_std(delay).unwrap())
                        .unwrap(),
                }
                true
            }
        }
    }

    /// Runs handlers until none is ready.
    fn run_ready(&mut self, chaotic: bool) {
        let mut guard = 0;
        while self.poll_one(chaotic) {
            guard += 1;
            assert!(guard < 1_000_000, "a handler never stops");
        }
    }

    fn advance(&mut self, secs: i64) {
        self.note(format!("advance {secs}s"));
        self.clock.advance(Duration::seconds(secs));
    }

    /// Takes in the rules the firewall made by hand around batches: EntryGuard must never
    /// touch them either.
    fn absorb_hand_made(&mut self) {
        let made: Vec<_> = std::mem::take(&mut *self.firewall.made_by_hand.lock().unwrap());
        for (group, rule) in made {
            let g = GROUPS
                .into_iter()
                .find(|g| sg(*g) == group.security_group_id)
                .expect("a simulated group");
            self.note(format!("hand-made rule {rule} on sg {g} during a batch"));
            self.hand_made.insert((g, rule));
        }
    }

    fn out_of_band(&mut self) {
        self.absorb_hand_made();
        self.stats.out_of_band += 1;
        let g = GROUPS[self.ctl.below(GROUPS.len() as u64) as usize];
        let group = self.sim.group(&region(), &sg(g)).unwrap().unwrap();
        if self.ctl.chance(0.6) && !group.rules.is_empty() {
            let r = &group.rules[self.ctl.below(group.rules.len() as u64) as usize];
            let rule = IngressRule {
                ports: r.ports,
                cidr: r.cidr,
            };
            self.note(format!("out-of-band delete {rule} on sg {g}"));
            self.sim.delete_by_hand(&region(), &sg(g), &rule).unwrap();
            self.hand_made.remove(&(g, rule));
        } else {
            let port = [22, 443, 5432, 80][self.ctl.below(4) as usize];
            let ips: Vec<&str> = USER_IPS
                .iter()
                .chain(USER_IPS_V6.iter())
                .chain(OTHER_IPS.iter())
                .copied()
                .collect();
            let ip = ips[self.ctl.below(ips.len() as u64) as usize];
            self.note(format!("hand-made rule {port} from {ip} on sg {g}"));
            self.hand_made(g, port, ip);
        }
    }

    /// One random action.
    async fn act(&mut self, options: &Options) {
        match self.ctl.below(100) {
            0..=39 => {
                let n = 1 + self.ctl.below(6);
                for _ in 0..n {
                    self.poll_one(true);
                }
            }
            40..=49 => {
                let user = self.ctl.below(3) as usize;
                self.spawn_start(user);
            }
            50..=55 => {
                let user = self.ctl.below(3) as usize;
                self.spawn_stop(user).await;
            }
            56..=58 => {
                let user = self.ctl.below(3) as usize;
                self.spawn_extend(user).await;
            }
            59..=74 => {
                let n = 1 + self.ctl.below(4) as usize;
                self.deliver(n, true);
            }
            75..=81 => {
                self.spawn_sweep();
                // EventBridge may invoke the sweeper twice at once.
                if self.ctl.chance(0.2) {
                    self.spawn_sweep();
                }
            }
            82..=93 => {
                let secs = [5, 30, 65, 130, 600, 3700][self.ctl.below(6) as usize];
                self.advance(secs);
            }
            94..=98 => {
                if options.out_of_band {
                    self.out_of_band();
                }
            }
            _ => {
                if self.ctl.chance(0.5) {
                    self.spawn_redrive();
                } else {
                    self.spawn_stray_check().await;
                }
            }
        }
    }

    /// A session check the sweeper might have scheduled, delivered at the wrong moment: early,
    /// late, after the session was extended or ended, or twice. It must change nothing a
    /// sweep at that moment would not.
    async fn spawn_stray_check(&mut self) {
        let user = self.ctl.below(3) as usize;
        let nth = self.ctl.below(4);
        let Some(s) = self.user_session(user, nth).await else {
            return;
        };
        self.stats.stray_checks += 1;
        let base = s.next_check_at().unwrap_or(s.expires_at);
        let at = base + Duration::seconds(self.ctl.below(181) as i64 - 90);
        let task = entryguard::ports::queue::Task::CheckSession {
            session_id: s.id,
            at,
        };
        let app = self.app.clone();
        self.spawn(format!("stray check({}, at {at})", s.id), async move {
            let _ = app.process_task(&task).await;
            Done::Other
        });
    }

    fn spawn_redrive(&mut self) {
        let app = self.app.clone();
        let admin = self.admin.clone().unwrap();
        self.spawn("redrive dead letters".into(), async move {
            let _ = app.redrive_dead_letters(&admin).await;
            Done::Other
        });
    }

    /// Runs ready handlers; when all wait on the clock (pacing, backoff), moves it to the
    /// first wake-up. False if handlers are left that nothing will ever wake.
    fn run_until_idle(&mut self, chaotic: bool) -> bool {
        loop {
            self.run_ready(chaotic);
            if self.exec.is_empty() {
                return true;
            }
            match self.clock.next_wake() {
                Some(at) => {
                    let now = self.app.now();
                    if at > now {
                        self.clock.set(at);
                    } else {
                        self.clock.set(now);
                    }
                }
                None => return false,
            }
        }
    }

    async fn all_sessions(&self) -> Vec<Session> {
        let mut out = Vec::new();
        for u in &self.users {
            out.extend(
                self.store
                    .list_user_sessions(u.user.id, usize::MAX)
                    .await
                    .unwrap(),
            );
        }
        out
    }

    /// Stops the chaos and runs handlers, deliveries and sweeps, moving the clock on when
    /// nothing is ready, until nothing is in flight.
    pub async fn quiesce(&mut self) -> Result<(), String> {
        self.set_chaos(false);
        self.absorb_hand_made();
        let mut last = String::new();
        for _ in 0..300 {
            let mut idle = self.run_until_idle(false);
            while idle {
                self.deliver(10, false);
                if self.exec.is_empty() {
                    break;
                }
                idle = self.run_until_idle(false);
            }
            if idle {
                self.spawn_sweep();
                idle = self.run_until_idle(false);
            }
            if !idle {
                return Err(format!(
                    "{} handler(s) blocked with nothing to wake them",
                    self.exec.len()
                ));
            }
            let sessions = self.all_sessions().await;
            let busy = sessions
                .iter()
                .any(|s| matches!(s.status(), SessionStatus::Pending | SessionStatus::Expiring));
            let ended: BTreeSet<String> = sessions
                .iter()
                .flat_map(|s| {
                    s.entries
                        .iter()
                        .filter(|e| e.status.is_terminal())
                        .map(|e| s.holder(e.index).as_str().to_owned())
                })
                .collect();
            let records = self.store.list_rules().await.unwrap();
            // A holder of an ended entry (a crash's leftover) waits for the reconciliation pass.
            let mut unsettled_rules = Vec::new();
            for r in &records {
                if r.count() == 0
                    || r.lease.is_some()
                    || self
                        .holders_of(&r.key)
                        .await
                        .iter()
                        .any(|h| ended.contains(h))
                {
                    unsettled_rules.push(format!("{r:?}"));
                }
            }
            // A stale rule id waits for the reconciliation pass, as a leftover holder does.
            unsettled_rules.extend(self.stale_rule_ids(&records));
            // A group lease a crashed or failed worker left runs out before the world is quiet.
            let now = self.app.now();
            for (key, group) in self
                .kv
                .scan::<serde_json::Value>("group/", false, usize::MAX)
                .unwrap()
            {
                if let Some(until) = group["lease"]["until"].as_str() {
                    if until.parse::<chrono::DateTime<Utc>>().unwrap() > now {
                        unsettled_rules.push(format!("{key}: lease until {until}"));
                    }
                }
            }
            let unsettled = !unsettled_rules.is_empty();
            let queue_empty = self.queue.is_empty().unwrap();
            let drift_free = self.drift_free().await;
            if !busy && !unsettled && queue_empty && drift_free {
                return Ok(());
            }
            last = format!(
                "busy sessions: {:?}; unsettled rules: {:?}; queue empty: {queue_empty}; drift free: {drift_free}",
                sessions
                    .iter()
                    .filter(|s| matches!(s.status(), SessionStatus::Pending | SessionStatus::Expiring))
                    .map(|s| (s.id, s.status(), s.entries.iter().map(|e| e.status).collect::<Vec<_>>()))
                    .collect::<Vec<_>>(),
                unsettled_rules
            );
            match self.queue.next_visible_at().unwrap() {
                Some(at) if at > self.app.now() => {
                    let secs = (at - self.app.now()).num_seconds().max(1);
                    self.advance(secs);
                }
                Some(_) => {}
                // Past the stall timeout and the lease, so the sweeper takes over (and, every
                // few sweeps, reconciliation).
                None => self.advance(121),
            }
        }
        Err(format!("never reached quiescence ({last})"))
    }

    /// Every holder record of a rule, read page by page as the application reads them.
    async fn holders_of(&self, key: &RuleKey) -> BTreeSet<String> {
        let mut all = BTreeSet::new();
        let mut after = None;
        loop {
            let page = self
                .store
                .rule_holders(key, after.as_ref(), 3)
                .await
                .unwrap();
            let done = page.len() < 3;
            after = page.last().cloned();
            all.extend(page.iter().map(|h| h.as_str().to_owned()));
            if done {
                return all;
            }
        }
    }

    /// Whether the cloud holds exactly EntryGuard's rules that the records hold (what a
    /// reconciliation pass would leave), so quiescence waits for the pass that fixes drift.
    async fn drift_free(&self) -> bool {
        let records = self.store.list_rules().await.unwrap();
        let held: BTreeSet<(SecurityGroupId, IngressRule)> = records
            .iter()
            .filter(|r| r.count() > 0)
            .map(|r| (r.key.security_group_id.clone(), r.key.rule))
            .collect();
        let mut ours = BTreeSet::new();
        let mut all = BTreeSet::new();
        for g in GROUPS {
            for r in self.sim.group(&region(), &sg(g)).unwrap().unwrap().rules {
                let k = (
                    sg(g),
                    IngressRule {
                        ports: r.ports,
                        cidr: r.cidr,
                    },
                );
                if r.is_managed() {
                    ours.insert(k.clone());
                }
                all.insert(k);
            }
        }
        ours.is_subset(&held) && held.is_subset(&all)
    }

    /// The invariants that must hold once nothing is in flight.
    pub async fn check(&self) -> Result<(), String> {
        for (g, rule) in &self.hand_made {
            let there = self
                .sim
                .group(&region(), &sg(*g))
                .unwrap()
                .unwrap()
                .rules
                .iter()
                .any(|r| r.ports == rule.ports && r.cidr == rule.cidr && !r.is_managed());
            if !there {
                return Err(format!("the hand-made rule {rule} on sg {g} was touched"));
            }
        }
        let sessions = self.all_sessions().await;
        // Rule -> the holders live sessions say it has.
        let mut needed: BTreeMap<(SecurityGroupId, IngressRule), BTreeSet<String>> =
            BTreeMap::new();
        for s in &sessions {
            let status = s.status();
            if matches!(status, SessionStatus::Pending | SessionStatus::Expiring) {
                return Err(format!("session {} still {status:?}", s.id));
            }
            if status.is_terminal() {
                if let Some(e) = s.entries.iter().find(|e| !e.status.is_terminal()) {
                    return Err(format!(
                        "terminal session {} has entry {} {:?}",
                        s.id, e.index, e.status
                    ));
                }
                continue;
            }
            for e in s
                .entries
                .iter()
                .filter(|e| e.status == EntryStatus::Applied)
            {
                for k in e.rules() {
                    needed
                        .entry((k.security_group_id.clone(), k.rule))
                        .or_default()
                        .insert(s.holder(e.index).as_str().to_owned());
                }
            }
        }
        // In the cloud: EntryGuard's rules, and every rule.
        let mut ours = BTreeSet::new();
        let mut all = BTreeSet::new();
        for g in GROUPS {
            for r in self.sim.group(&region(), &sg(g)).unwrap().unwrap().rules {
                let rule = IngressRule {
                    ports: r.ports,
                    cidr: r.cidr,
                };
                if r.is_managed() {
                    ours.insert((sg(g), rule));
                }
                all.insert((sg(g), rule));
            }
        }
        for k in &ours {
            if !needed.contains_key(k) {
                return Err(format!(
                    "rule {} on {} is open but no live session needs it",
                    k.1, k.0
                ));
            }
        }
        for (k, holders) in &needed {
            if !all.contains(k) {
                let record = self
                    .store
                    .list_rules()
                    .await
                    .unwrap()
                    .into_iter()
                    .find(|r| r.key.security_group_id == k.0 && r.key.rule == k.1);
                let changes: Vec<String> = self
                    .firewall
                    .changes
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|c| c.group.security_group_id == k.0 && c.rule == k.1)
                    .map(|c| {
                        format!(
                            "{} by {}",
                            if c.created { "created" } else { "revoked" },
                            c.by
                        )
                    })
                    .collect();
                return Err(format!(
                    "rule {} on {} is missing though live entries {holders:?} have it APPLIED; record {record:?}; cloud changes {changes:?}",
                    k.1, k.0
                ));
            }
        }
        let records = self.store.list_rules().await.unwrap();
        for r in &records {
            let k = (r.key.security_group_id.clone(), r.key.rule);
            let holders = self.holders_of(&r.key).await;
            if r.count() != holders.len() {
                return Err(format!(
                    "rule {}: the count says {} holders, {} holder records exist",
                    r.key,
                    r.count(),
                    holders.len()
                ));
            }
            let want = needed.get(&k).cloned().unwrap_or_default();
            if holders != want {
                let history = self.history.lock().unwrap().clone();
                let odd: Vec<String> = holders
                    .symmetric_difference(&want)
                    .map(|h| {
                        let (sid, idx) = h.split_once('#').unwrap();
                        let s = sessions.iter().find(|s| s.id.to_string() == sid);
                        match s {
                            Some(s) => {
                                let i: u32 = idx.parse().unwrap();
                                format!(
                                    "{h}: session {:?}, entry {:?}, ever {:?}",
                                    s.status(),
                                    s.entries[i as usize].status,
                                    history.get(&(s.id, i))
                                )
                            }
                            None => format!("{h}: no such session"),
                        }
                    })
                    .collect();
                return Err(format!(
                    "rule {}: holders differ from the live entries needing it: {odd:?}",
                    r.key
                ));
            }
            if r.lease.is_some() {
                return Err(format!("rule {}: a lease is left", r.key));
            }
        }
        self.check_group_records(&sessions, &records)?;
        if records.len() != needed.len() {
            return Err(format!(
                "{} rule records for {} needed rules",
                records.len(),
                needed.len()
            ));
        }
        for u in &self.users {
            let live = sessions
                .iter()
                .filter(|s| s.user_id == u.user.id && s.status().holds_slot())
                .count() as u32;
            let slots = self.store.live_session_count(u.user.id).await.unwrap();
            if slots != live {
                return Err(format!(
                    "user {} holds {slots} slot(s) for {live} live session(s)",
                    u.user.email
                ));
            }
            if live > 3 {
                return Err(format!("{live} concurrent sessions on the Starter plan"));
            }
        }
        self.check_audit(&sessions).await
    }

    /// The group batches' records: no lease still held, no work item for an ended entry or a
    /// missing session, and every `Present` record's rule id naming the rule EntryGuard has in
    /// the cloud.
    fn check_group_records(
        &self,
        sessions: &[Session],
        records: &[entryguard::domain::rule::RuleState],
    ) -> Result<(), String> {
        let now = self.app.now();
        for (key, group) in self
            .kv
            .scan::<serde_json::Value>("group/", false, usize::MAX)
            .unwrap()
        {
            let until = group["lease"]["until"].as_str();
            if let Some(until) = until {
                let until: chrono::DateTime<Utc> = until.parse().unwrap();
                if until > now {
                    return Err(format!("{key}: a group lease is still held"));
                }
            }
        }
        for (key, item) in self
            .kv
            .scan::<WorkItem>("work/", false, usize::MAX)
            .unwrap()
        {
            let Some(s) = sessions.iter().find(|s| s.id == item.session_id) else {
                return Err(format!("{key}: a work item for a missing session"));
            };
            match s.entries.get(item.entry as usize) {
                None => return Err(format!("{key}: a work item for a missing entry")),
                Some(e) if e.status.is_terminal() => {
                    return Err(format!("{key}: a work item for an entry {:?}", e.status))
                }
                Some(_) => {}
            }
        }
        if let Some(stale) = self.stale_rule_ids(records).into_iter().next() {
            return Err(stale);
        }
        Ok(())
    }

    /// `Present` rule records whose id is not the one the cloud gives EntryGuard's rule (a rule
    /// re-created by a call whose answer was lost): harmless, since a revoke by a missing id
    /// lists the group, and drift reconciliation corrects them at its next pass.
    fn stale_rule_ids(&self, records: &[entryguard::domain::rule::RuleState]) -> Vec<String> {
        let mut stale = Vec::new();
        for r in records {
            let (CloudState::Present, Some(id)) = (r.cloud, &r.cloud_rule_id) else {
                continue;
            };
            let group = self
                .sim
                .group(&region(), &r.key.security_group_id)
                .unwrap()
                .unwrap();
            let ours = group.rules.iter().find(|c| {
                c.is_managed() && c.ports == r.key.rule.ports && c.cidr == r.key.rule.cidr
            });
            if let Some(c) = ours {
                if c.id != id.as_str() {
                    stale.push(format!(
                        "rule {}: the record names {id}, the cloud's rule is {}",
                        r.key, c.id
                    ));
                }
            }
        }
        stale
    }

    async fn audit_events(&self) -> Vec<AuditEvent> {
        self.store
            .list_audit(
                self.org,
                &AuditQuery {
                    limit: usize::MAX,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .items
    }

    /// Every entry that was ever APPLIED has a rule.applied event, and every one removed after
    /// that a rule.removed event; every rule the sweeper changed in the cloud has an event
    /// naming its group and address.
    async fn check_audit(&self, sessions: &[Session]) -> Result<(), String> {
        let events = self.audit_events().await;
        let has = |kind: AuditType, s: &Session, index: u32| {
            let resource = s.entries[index as usize].resource_id;
            events.iter().any(|e| {
                e.kind == kind && e.session_id == Some(s.id) && e.resource_id == Some(resource)
            })
        };
        let history = self.history.lock().unwrap().clone();
        for s in sessions {
            for e in &s.entries {
                let seen = history.get(&(s.id, e.index)).cloned().unwrap_or_default();
                if seen.contains(&EntryStatusKey::Applied)
                    && !has(AuditType::RuleApplied, s, e.index)
                {
                    return Err(format!(
                        "entry {}#{} was APPLIED but the audit log has no rule.applied for it",
                        s.id, e.index
                    ));
                }
                let was_open = seen.contains(&EntryStatusKey::Applied)
                    || seen.contains(&EntryStatusKey::Removing);
                if was_open
                    && e.status == EntryStatus::Removed
                    && !has(AuditType::RuleRemoved, s, e.index)
                {
                    return Err(format!(
                        "entry {}#{} was removed but the audit log has no rule.removed for it",
                        s.id, e.index
                    ));
                }
            }
        }
        for letter in self.queue.dead_letters(1000).await.unwrap() {
            let Some(session_id) = letter.task.as_ref().and_then(|t| t.session_id()) else {
                continue;
            };
            let id = session_id.to_string();
            if !events
                .iter()
                .any(|e| e.kind == AuditType::SystemAlert && e.message.contains(&id))
            {
                return Err(format!(
                    "a task of session {id} is in the dead-letter queue, unreported"
                ));
            }
        }
        let changes: Vec<CloudChange> = self.firewall.changes.lock().unwrap().clone();
        for c in changes.iter().filter(|c| c.by.starts_with("sweep")) {
            let kind = if c.created {
                AuditType::RuleApplied
            } else {
                AuditType::RuleRemoved
            };
            let ip = c.rule.cidr.addr().to_string();
            let found = events.iter().any(|e| {
                e.kind == kind
                    && e.message.contains(c.group.security_group_id.as_str())
                    && e.message.contains(&ip)
            });
            if !found {
                return Err(format!(
                    "the sweeper {} {} on {} without an audit event",
                    if c.created { "opened" } else { "closed" },
                    c.rule,
                    c.group.security_group_id
                ));
            }
        }
        Ok(())
    }

    /// Lets every session expire and everything settle; then nothing may be open.
    pub async fn check_after_expiry(&mut self) -> Result<(), String> {
        self.advance(30 * 3600);
        self.quiesce().await?;
        self.check().await?;
        let sessions = self.all_sessions().await;
        if let Some(s) = sessions.iter().find(|s| !s.status().is_terminal()) {
            return Err(format!("session {} is {:?} after expiry", s.id, s.status()));
        }
        Ok(())
    }

    pub async fn play(&mut self, options: &Options) {
        self.set_chaos(true);
        for _ in 0..options.steps {
            self.act(options).await;
        }
    }

    pub fn finish_stats(&mut self) -> Stats {
        let (crashes, errors) = self.ctl.counts();
        self.stats.crashes = crashes;
        self.stats.injected_errors = errors;
        let counts = self.sim.counts();
        self.stats.cloud_calls = counts.calls;
        self.stats.throttled = counts.throttled;
        self.stats.dead_letters = self.queue.dead_letter_count().unwrap() as u64;
        self.stats.paced = u64::from(self.pacer.is_some());
        self.stats.by_hand = *self.firewall.by_hand_count.lock().unwrap();
        self.stats.group_overlaps = *self.overlaps.lock().unwrap();
        for c in self.firewall.changes.lock().unwrap().iter() {
            if c.rule.cidr.addr().is_ipv6() {
                self.stats.ipv6_rule_changes[usize::from(!c.created)] += 1;
            }
        }
        self.stats
    }
}

/// Plays one schedule from its seed and checks the invariants.
pub async fn run(seed: u64, options: Options) -> (Result<(), String>, Stats, Vec<String>) {
    let t = std::time::Instant::now();
    let mut w = World::new(seed).await;
    let t1 = t.elapsed();
    w.play(&options).await;
    let t2 = t.elapsed();
    let mut result = w.quiesce().await;
    let t3 = t.elapsed();
    if result.is_ok() {
        result = w.check().await;
    }
    let t4 = t.elapsed();
    if result.is_ok() {
        result = w.check_after_expiry().await;
    }
    if std::env::var("SIM_TIMING").is_ok() {
        eprintln!(
            "new {t1:?} play {t2:?} quiesce {t3:?} check {t4:?} expiry {:?}",
            t.elapsed()
        );
    }
    let stats = w.finish_stats();
    (result, stats, std::mem::take(&mut w.trace))
}
