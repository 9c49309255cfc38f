//! A stand-in for the Lambda Runtime API (the HTTP interface a custom runtime polls, e.g.
//! `provided.al2023`), on 127.0.0.1, so the functions' real binaries run as Lambda runs them:
//! `GET /2018-06-01/runtime/invocation/next` hands out one event, the binary answers on
//! `.../{id}/response` or `.../{id}/error`, and a failed start is reported on `/runtime/init/error`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

/// How long one invocation may take before the test gives up on it.
const INVOCATION_TIMEOUT: Duration = Duration::from_secs(60);
/// The deadline the runtime reports to the handler (the template's function timeout).
const FUNCTION_TIMEOUT_MS: u64 = 30_000;

/// What the binary answered.
#[derive(Debug, Clone)]
pub enum Outcome {
    Response(Value),
    /// The body of `POST .../error`: `errorType` and `errorMessage`.
    Error(Value),
}

struct Invocation {
    payload: Value,
    reply: oneshot::Sender<Outcome>,
}

struct Shared {
    next: tokio::sync::Mutex<mpsc::UnboundedReceiver<Invocation>>,
    in_flight: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_errors: Mutex<Vec<String>>,
}

/// One function's Runtime API (Lambda runs one per execution environment).
pub struct RuntimeApi {
    addr: std::net::SocketAddr,
    queue: mpsc::UnboundedSender<Invocation>,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl RuntimeApi {
    pub async fn start() -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            next: tokio::sync::Mutex::new(rx),
            in_flight: Mutex::default(),
            init_errors: Mutex::default(),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port for the Runtime API");
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("the Runtime API");
        });
        Self {
            addr,
            queue,
            shared,
            server,
        }
    }

    /// `AWS_LAMBDA_RUNTIME_API`: host and port, no scheme.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// Errors the binary reported before it could take events.
    pub fn init_errors(&self) -> Vec<String> {
        self.shared.init_errors.lock().unwrap().clone()
    }

    /// Hands `payload` to the function and waits for its answer.
    pub async fn invoke(&self, function: &mut LambdaProcess, payload: Value) -> Outcome {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Invocation { payload, reply })
            .expect("the Runtime API is up");
        let deadline = tokio::time::Instant::now() + INVOCATION_TIMEOUT;
        tokio::pin!(answer);
        loop {
            tokio::select! {
                outcome = &mut answer => return outcome.expect("the invocation was answered"),
                _ = tokio::time::sleep(Duration::from_millis(200)) => {
                    function.assert_running(&self.init_errors());
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "{} did not answer within {INVOCATION_TIMEOUT:?}; its log:\n{}",
                        function.name,
                        function.log()
                    );
                }
            }
        }
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let Some(invocation) = shared.next.lock().await.recv().await else {
        // The test is over: the binary waits here until it is killed, as it would for an event.
        return std::future::pending().await;
    };
    let id = uuid::Uuid::new_v4().to_string();
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + FUNCTION_TIMEOUT_MS;
    shared
        .in_flight
        .lock()
        .unwrap()
        .insert(id.clone(), invocation.reply);
    let mut headers = HeaderMap::new();
    let header = |v: &str| HeaderValue::from_str(v).unwrap();
    headers.insert("lambda-runtime-aws-request-id", header(&id));
    headers.insert("lambda-runtime-deadline-ms", header(&deadline.to_string()));
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        header("arn:aws:lambda:eu-west-1:123456789012:function:entryguard-test"),
    );
    headers.insert(
        "lambda-runtime-trace-id",
        header("Root=1-00000000-000000000000000000000000;Sampled=0"),
    );
    headers.insert("content-type", header("application/json"));
    (headers, invocation.payload.to_string())
}

fn answer(shared: &Shared, id: &str, outcome: Outcome) -> StatusCode {
    match shared.in_flight.lock().unwrap().remove(id) {
        Some(reply) => {
            let _ = reply.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::NOT_FOUND,
    }
}

fn json(body: &Bytes) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn response(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    answer(&shared, &id, Outcome::Response(json(&body)))
}

async fn error(
    State(shared): State<Arc<Shared>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    answer(&shared, &id, Outcome::Error(json(&body)))
}

async fn init_error(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    shared
        .init_errors
        .lock()
        .unwrap()
        .push(String::from_utf8_lossy(&body).into_owned());
    StatusCode::ACCEPTED
}

/// The functions' binaries, built (or found up to date) by cargo in the target directory this
/// test runs from: another package's binaries have no `CARGO_BIN_EXE_*` here.
pub fn build_function_binaries(binaries: &[&str]) -> BTreeMap<String, PathBuf> {
    let exe = std::env::current_exe().expect("the test's path");
    // <target>/debug/deps/<test>: the binaries are in <target>/debug.
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/debug");
    let target_dir = profile_dir.parent().expect("the target directory");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(&cargo);
    // Cargo gives this test its package's CARGO_PKG_* and CARGO_MANIFEST_* variables (and a few
    // more); build scripts that watch them (ring's) would otherwise rebuild on every alternation
    // with the outer build. The caller's own settings (CARGO_INCREMENTAL, CARGO_PROFILE_*, ...)
    // stay: without them the workspace's crates would build again, differently.
    const SET_FOR_THE_TEST: [&str; 8] = [
        "CARGO_PKG_",
        "CARGO_MANIFEST_",
        "CARGO_BIN_",
        "CARGO_CRATE_",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
        "__CARGO",
    ];
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if SET_FOR_THE_TEST.iter().any(|p| name.starts_with(p)) {
            command.env_remove(name.as_ref());
        }
    }
    command
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .arg("build")
        .arg("--target-dir")
        .arg(target_dir)
        // The whole workspace's feature resolution, as `cargo test --workspace` and
        // `cargo test -p entryguard-tests` use: with `-p` for the three packages alone the
        // dependencies would resolve other features, and much of the tree would build again.
        .arg("--workspace");
    for bin in binaries {
        command.args(["--bin", bin]);
    }
    let status = command.status().expect("cargo runs");
    assert!(status.success(), "building {binaries:?} failed");
    binaries
        .iter()
        .map(|b| (b.to_string(), profile_dir.join(b)))
        .collect()
}

/// A function's binary running under the stand-in Runtime API; killed when dropped.
pub struct LambdaProcess {
    pub name: String,
    child: Child,
    log: PathBuf,
}

impl LambdaProcess {
    /// Starts `binary` with exactly `environment` plus what Lambda itself sets in every
    /// execution environment (nothing inherited from the test).
    pub fn spawn(
        binary: &Path,
        runtime: &RuntimeApi,
        environment: &BTreeMap<String, String>,
        aws: &BTreeMap<String, String>,
    ) -> Self {
        let name = binary.file_name().unwrap().to_string_lossy().into_owned();
        let log = std::env::temp_dir().join(format!(
            "entryguard-lambda-{name}-{}.log",
            uuid::Uuid::new_v4()
        ));
        let file = std::fs::File::create(&log).expect("a log file");
        let child = Command::new(binary)
            .env_clear()
            .envs(environment)
            .envs(aws)
            .env("AWS_LAMBDA_RUNTIME_API", runtime.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", &name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", binary.display()));
        Self { name, child, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fails the test, with the binary's output, if it has exited.
    pub fn assert_running(&mut self, init_errors: &[String]) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited ({status}); init errors {init_errors:?}; its log:\n{}",
                self.name,
                self.log()
            );
        }
    }
}

impl Drop for LambdaProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}
