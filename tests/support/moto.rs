//! A moto server for the AWS integration tests: started on a free port of 127.0.0.1, waited
//! for, and killed when dropped. A missing `moto_server` fails the test with instructions: these
//! tests are never skipped.
//!
//! Each test gets a server of its own, forked from one zygote per test binary
//! (`support/moto_atomic.py --zygote`) that has already imported moto and its services: a fresh
//! `moto_server` costs about 2 s of CPU before it answers, a fork about 0.1 s.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use entryguard_aws::sdk::aws_config::SdkConfig;
use entryguard_aws::SdkOptions;

/// The region the tests' resources live in.
pub const REGION: &str = "eu-west-1";

/// How long moto may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Moto {
    server: Server,
    port: u16,
    log: PathBuf,
    recording: PathBuf,
}

/// One request as moto's recorder saw it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct RecordedRequest {
    pub headers: std::collections::BTreeMap<String, String>,
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub body_encoded: bool,
}

impl RecordedRequest {
    pub fn body_bytes(&self) -> Vec<u8> {
        use base64::Engine;
        let body = self.body.clone().unwrap_or_default();
        if self.body_encoded {
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .expect("moto encodes bodies in base64")
        } else {
            body.into_bytes()
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

impl Moto {
    /// Starts moto: a fork of this binary's zygote (`support/moto_atomic.py`, moto's server with
    /// DynamoDB's atomicity; see there), or the program named by `MOTO_SERVER` (e.g. plain
    /// `moto_server`), started on its own.
    pub fn start() -> Self {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("entryguard-moto-{port}.log"));
        // Where moto's request recorder writes, once a test starts it.
        let recording = std::env::temp_dir().join(format!("entryguard-moto-{port}.recording"));
        let server = match std::env::var("MOTO_SERVER") {
            Ok(program) => Server::Own(spawn_program(&program, port, &log, &recording)),
            Err(_) => Server::Forked(zygote().fork(port, &log, &recording)),
        };
        let mut moto = Self {
            server,
            port,
            log,
            recording,
        };
        moto.wait_until_listening();
        moto
    }

    fn wait_until_listening(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port).into();
        loop {
            if let Some(status) = self.server.exited() {
                panic!(
                    "moto_server exited at start ({status}); its log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "moto_server did not listen on 127.0.0.1:{} within {START_TIMEOUT:?}",
                    self.port
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts recording every request moto receives (after any earlier recording is erased).
    pub async fn start_recording(&self) {
        let client = reqwest::Client::new();
        for action in ["reset-recording", "start-recording"] {
            let r = client
                .post(format!("{}/moto-api/recorder/{action}", self.endpoint()))
                .send()
                .await
                .expect("moto's recorder answers");
            assert!(r.status().is_success(), "{action}: {}", r.status());
        }
    }

    /// The requests recorded so far.
    pub fn recording(&self) -> Vec<RecordedRequest> {
        parse_recording(&std::fs::read_to_string(&self.recording).unwrap_or_default())
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Options that point every client at this server with throwaway keys.
    pub fn options(&self) -> SdkOptions {
        SdkOptions {
            endpoint_url: Some(self.endpoint()),
            region: Some(REGION.to_owned()),
            static_credentials: Some(("test".into(), "test".into())),
        }
    }

    pub async fn sdk_config(&self) -> SdkConfig {
        entryguard_aws::sdk_config(&self.options()).await
    }
}

/// The records of moto's recorder file. moto appends while it serves other requests: records
/// may share a line, and the last one may be half-written (it is left for the next read).
pub fn parse_recording(text: &str) -> Vec<RecordedRequest> {
    let mut records = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<RecordedRequest>();
    loop {
        match stream.next() {
            None => return records,
            Some(Ok(record)) => records.push(record),
            Some(Err(e)) if e.is_eof() => return records,
            Some(Err(e)) => panic!(
                "moto's recording cannot be read at byte {}: {e}",
                stream.byte_offset()
            ),
        }
    }
}

/// How a test's moto server runs.
enum Server {
    /// A program of its own (`MOTO_SERVER`).
    Own(Child),
    /// A process the zygote forked.
    Forked(u32),
}

impl Server {
    /// Why the server is gone, if it is.
    fn exited(&mut self) -> Option<String> {
        match self {
            Server::Own(child) => child.try_wait().ok().flatten().map(|s| s.to_string()),
            // The zygote's children are reaped as they exit, so a gone one has no /proc entry.
            Server::Forked(pid) => (Path::new("/proc/self").exists()
                && !Path::new(&format!("/proc/{pid}")).exists())
            .then(|| format!("process {pid} is gone")),
        }
    }

    fn stop(&mut self) {
        match self {
            Server::Own(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
            Server::Forked(pid) => zygote().stop(*pid),
        }
    }
}

fn spawn_program(program: &str, port: u16, log: &Path, recording: &Path) -> Child {
    let log_file = std::fs::File::create(log).expect("a log file for moto");
    Command::new(program)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("MOTO_RECORDER_FILEPATH", recording)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("the moto log file"))
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| panic!("could not start `{program}` ({e}); {INSTALL}"))
}

const INSTALL: &str = "the AWS integration tests need moto: install it with \
    `pip install \"moto[server]\"` (or set MOTO_SERVER to a moto_server program)";

/// The zygote and the two ends of its line protocol (see `support/moto_atomic.py`).
struct Zygote {
    // Kept so the process is not reaped or killed early: it ends when this binary's end of its
    // stdin closes, and takes its servers with it.
    _process: Child,
    requests: ChildStdin,
    answers: BufReader<ChildStdout>,
    log: PathBuf,
}

/// This test binary's zygote, started on first use. Tests ask it in turn; a fork takes
/// milliseconds.
fn zygote() -> std::sync::MutexGuard<'static, Zygote> {
    static ZYGOTE: OnceLock<Mutex<Zygote>> = OnceLock::new();
    ZYGOTE
        .get_or_init(|| Mutex::new(Zygote::start()))
        .lock()
        // A test that panicked mid-exchange leaves the line protocol in step (each exchange is
        // one write and one read under the lock), so the zygote is still usable.
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Zygote {
    fn start() -> Self {
        let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/support/moto_atomic.py");
        let log =
            std::env::temp_dir().join(format!("entryguard-moto-zygote-{}.log", std::process::id()));
        let log_file = std::fs::File::create(&log).expect("a log file for moto's zygote");
        let mut process = Command::new(&python)
            .args([script, "-H", "127.0.0.1", "--zygote"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("could not start `{python} {script}` ({e}); {INSTALL}"));
        let requests = process.stdin.take().expect("the zygote's stdin");
        let answers = BufReader::new(process.stdout.take().expect("the zygote's stdout"));
        let mut zygote = Self {
            _process: process,
            requests,
            answers,
            log,
        };
        let ready = zygote.answer();
        assert_eq!(ready, "ready", "moto's zygote did not start");
        zygote
    }

    fn answer(&mut self) -> String {
        let mut line = String::new();
        match self.answers.read_line(&mut line) {
            Ok(n) if n > 0 => line.trim().to_owned(),
            _ => panic!(
                "moto's zygote stopped answering; {INSTALL}. Its log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            ),
        }
    }

    fn ask(&mut self, request: serde_json::Value) -> String {
        writeln!(self.requests, "{request}")
            .and_then(|()| self.requests.flush())
            .unwrap_or_else(|e| {
                panic!(
                    "moto's zygote is gone ({e}). Its log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                )
            });
        self.answer()
    }

    fn fork(&mut self, port: u16, log: &Path, recording: &Path) -> u32 {
        let pid = self.ask(serde_json::json!({"port": port, "log": log, "recording": recording}));
        pid.parse()
            .unwrap_or_else(|_| panic!("moto's zygote answered {pid:?}, not a process id"))
    }

    /// Quietly does nothing if the zygote is gone (its servers went with it): this runs in
    /// `Drop`, perhaps while a failed test unwinds.
    fn stop(&mut self, pid: u32) {
        let request = serde_json::json!({ "stop": pid });
        if writeln!(self.requests, "{request}")
            .and_then(|()| self.requests.flush())
            .is_ok()
        {
            let _ = self.answers.read_line(&mut String::new());
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.server.stop();
        let _ = std::fs::remove_file(&self.log);
        let _ = std::fs::remove_file(&self.recording);
    }
}

/// A provisioned deployment on a fresh moto server: table, queues, and the AWS adapters.
pub struct AwsFixture {
    pub backend: entryguard_aws::AwsBackend,
    pub names: entryguard_aws::ResourceNames,
    pub sdk: SdkConfig,
    pub ec2: entryguard_aws::sdk::ec2::Client,
    /// The provisioned KMS key (what the template's `KMS_KEY_ID` names).
    pub kms_key_id: String,
    vpc_id: String,
    // Last, so the server outlives the clients above while they drop.
    pub moto: Moto,
}

impl AwsFixture {
    /// Starts moto and provisions through the same code as `--provision`.
    pub async fn start(prefix: &str) -> Self {
        let moto = Moto::start();
        let sdk = moto.sdk_config().await;
        let names = entryguard_aws::ResourceNames::with_prefix(prefix);
        let provisioned = entryguard_aws::provision(&sdk, &names)
            .await
            .expect("provisioning against moto");
        let backend = entryguard_aws::AwsBackend::new(
            &sdk,
            &names.table,
            &provisioned.queue_url,
            &provisioned.kms_key_id,
        );
        let ec2 = entryguard_aws::sdk::ec2::Client::new(&sdk);
        let vpc_id = ec2
            .create_vpc()
            .cidr_block("10.20.0.0/16")
            .send()
            .await
            .expect("a VPC in moto")
            .vpc
            .and_then(|v| v.vpc_id)
            .expect("the VPC's id");
        Self {
            backend,
            names,
            sdk,
            ec2,
            kms_key_id: provisioned.kms_key_id.clone(),
            vpc_id,
            moto,
        }
    }

    /// A new security group in the fixture's VPC.
    pub async fn security_group(&self, name: &str) -> entryguard::domain::net::SecurityGroupId {
        self.ec2
            .create_security_group()
            .group_name(name)
            .description(format!("EntryGuard test group {name}"))
            .vpc_id(&self.vpc_id)
            .send()
            .await
            .expect("a security group in moto")
            .group_id
            .expect("the group's id")
            .parse()
            .expect("moto's group ids look like EC2's")
    }

    /// Adds a rule the way a person would in the console: no EntryGuard tag.
    pub async fn hand_made_rule(
        &self,
        group: &entryguard::domain::net::SecurityGroupId,
        cidr: &str,
        port: i32,
    ) {
        use entryguard_aws::sdk::ec2::types::{IpPermission, IpRange};
        self.ec2
            .authorize_security_group_ingress()
            .group_id(group.as_str())
            .ip_permissions(
                IpPermission::builder()
                    .ip_protocol("tcp")
                    .from_port(port)
                    .to_port(port)
                    .ip_ranges(
                        IpRange::builder()
                            .cidr_ip(cidr)
                            .description("office")
                            .build(),
                    )
                    .build(),
            )
            .send()
            .await
            .expect("a hand-made rule in moto");
    }

    /// Fills `count` rules into the group by hand in one call (10.1.<i>.0/24 on TCP 443), to bring
    /// it to or near its rule limit.
    pub async fn hand_made_rules(
        &self,
        group: &entryguard::domain::net::SecurityGroupId,
        count: u8,
    ) {
        use entryguard_aws::sdk::ec2::types::{IpPermission, IpRange};
        let permission = (0..count).fold(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(443)
                .to_port(443),
            |p, i| p.ip_ranges(IpRange::builder().cidr_ip(format!("10.1.{i}.0/24")).build()),
        );
        self.ec2
            .authorize_security_group_ingress()
            .group_id(group.as_str())
            .ip_permissions(permission.build())
            .send()
            .await
            .expect("hand-made rules in moto");
    }

    /// The group's inbound rules as EC2 describes them.
    pub async fn rules(
        &self,
        group: &entryguard::domain::net::SecurityGroupId,
    ) -> Vec<entryguard_aws::CloudRule> {
        entryguard_aws::ec2::list_ingress_rules(&self.ec2, group)
            .await
            .expect("DescribeSecurityGroupRules")
    }

    /// A static-key AWS credential of `org` (its secret sealed with the fixture's KMS key),
    /// stored where the firewall finds it.
    pub async fn credential(
        &self,
        org: entryguard::domain::ids::OrgId,
    ) -> entryguard::domain::model::Credential {
        use entryguard::domain::credential::CredentialAccess;
        use entryguard::domain::model::{Credential, CredentialStatus, Secret};
        use entryguard::ports::{SealContext, SecretSealer};
        let id = entryguard::domain::ids::CredentialId::from_uuid(uuid::Uuid::new_v4());
        let sealed = self
            .backend
            .sealer
            .seal(
                &Secret::new("moto-secret".into()),
                &SealContext {
                    org_id: org,
                    credential_id: id,
                    purpose: Default::default(),
                },
            )
            .await
            .expect("sealing with moto's KMS");
        let credential = Credential {
            id,
            org_id: org,
            name: "moto".parse().unwrap(),
            region: REGION.parse().unwrap(),
            access: CredentialAccess::AccessKeys {
                access_key_id: "AKIAMOTOTEST0000".parse().unwrap(),
                sealed_secret: sealed,
            },
            status: CredentialStatus::Unverified,
            account_id: None,
            checked_at: None,
            status_message: None,
            created_at: chrono::Utc::now(),
        };
        self.put_credential(&credential).await;
        credential
    }

    pub async fn put_credential(&self, credential: &entryguard::domain::model::Credential) {
        use entryguard::ports::Store;
        self.backend
            .store
            .put_doc(
                entryguard::ports::store::DocKind::Credential,
                credential.org_id,
                *credential.id.as_uuid(),
                serde_json::to_value(credential).unwrap(),
            )
            .await
            .expect("storing the credential");
    }

    /// Messages waiting or in flight on the task queue.
    pub async fn queue_depth(&self) -> (u64, u64) {
        use entryguard_aws::sdk::sqs::types::QueueAttributeName as A;
        let sqs = entryguard_aws::sdk::sqs::Client::new(&self.sdk);
        // moto stalls now and then under a storm (one Python process): asked again, not failed.
        let mut attempt = 0;
        let attrs = loop {
            let asked = sqs
                .get_queue_attributes()
                .queue_url(self.backend.queue.url())
                .attribute_names(A::ApproximateNumberOfMessages)
                .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
                .send()
                .await;
            match asked {
                Ok(out) => break out.attributes.unwrap_or_default(),
                Err(e) if attempt < 5 => {
                    attempt += 1;
                    eprintln!("GetQueueAttributes failed ({e}); asking again");
                }
                Err(e) => panic!("GetQueueAttributes: {e:?}"),
            }
        };
        let get = |k: &A| attrs.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
        (
            get(&A::ApproximateNumberOfMessages),
            get(&A::ApproximateNumberOfMessagesNotVisible),
        )
    }

    /// Runs the worker on SQS until no message is waiting or in flight (retries included, in
    /// real time), at most `limit`.
    pub async fn settle(&self, app: &entryguard::app::App, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let handled =
                entryguard_aws::process_batch(app, &self.backend.queue, Duration::from_millis(200))
                    .await
                    .expect("receiving from SQS");
            if handled == 0 && self.queue_depth().await == (0, 0) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the task queue did not empty within {limit:?}: {:?}",
                self.queue_depth().await
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_recording;

    #[test]
    fn records_sharing_a_line_and_a_half_written_last_one_are_read() {
        let one = r#"{"headers":{},"method":"POST","url":"http://127.0.0.1/","body":"","body_encoded":false}"#;
        let text = format!("{one}{one}\n{one}\n{}", &one[..40]);
        assert_eq!(parse_recording(&text).len(), 3);
        assert!(parse_recording("").is_empty());
    }

    #[test]
    #[should_panic(expected = "cannot be read")]
    fn a_broken_record_in_the_middle_is_an_error() {
        parse_recording("{\"module\": 1}\n{}");
    }
}
