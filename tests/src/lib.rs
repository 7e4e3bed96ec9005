//! Test harness: starts real servers on free ports for one test and stops them
//! when the test ends. No mock objects: moto in server mode for AWS, the
//! Databricks emulator for Databricks, and the local stack for the whole path.

pub mod databricks_fixture;
pub mod event_pattern;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The project virtualenv: `$LAKEOPS_VENV`, or `.venv` in the repository.
pub fn venv() -> PathBuf {
    std::env::var_os("LAKEOPS_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"))
}

/// Cargo's target directory, as the build that runs the tests uses it.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
}

/// A port that is free right now on 127.0.0.1, handed out once per process.
///
/// Why not simply bind port 0: the kernel takes such ports from the ephemeral
/// range, the same range it gives client connections their local ports, and a
/// port that is free when we ask may be taken again before the server we start
/// (moto takes about a second) binds it. Two tests that ran at once once got
/// the same port: the second server failed to bind, the second test talked to
/// the first test's server and lost it when that test ended (a CI failure).
/// So ports come from below the ephemeral range, where no client socket lands,
/// from a counter that never repeats within this process, and each one is
/// checked with a bind before it is handed out.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    const LOW: u32 = 10_000;
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    if ephemeral_start <= LOW + 1_000 {
        return TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
    }
    let span = ephemeral_start - LOW;
    // Test binaries run one after another, but a start that depends on the
    // process id keeps two concurrent runs on one machine apart as well.
    let start = (std::process::id().wrapping_mul(7_919)) % span;
    for _ in 0..span {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (LOW + (start + offset) % span) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between {LOW} and {ephemeral_start}")
}

/// A child process in its own process group, killed with its children on drop.
pub struct Server {
    child: Child,
    pub url: String,
    name: &'static str,
}

impl Server {
    fn spawn(name: &'static str, command: &mut Command) -> Child {
        unsafe {
            command.pre_exec(|| {
                // Own process group, so drop kills the whole tree; and die with
                // the test thread that started us if the test is killed.
                libc::setpgid(0, 0);
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e} (run the README's setup first)"))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let pgid = self.child.id() as i32;
        unsafe {
            libc::kill(-pgid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        let _ = self.child.wait();
        eprintln!("{} had to be killed", self.name);
    }
}

fn wait_until_answers(url: &str, what: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if probe::http_answers(url) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not answer at {url} within {timeout:?}");
}

mod probe {
    /// A readiness probe: open a TCP connection and send a
    /// minimal HTTP GET; any HTTP status line means the server is up.
    pub fn http_answers(url: &str) -> bool {
        use std::io::{Read, Write};
        let Some(rest) = url.strip_prefix("http://") else {
            return false;
        };
        let (host, path) = rest
            .split_once('/')
            .map(|(h, p)| (h, format!("/{p}")))
            .unwrap_or((rest, "/".into()));
        let Ok(mut stream) = std::net::TcpStream::connect(host) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(2)));
        if stream
            .write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
            .is_err()
        {
            return false;
        }
        let mut buf = [0u8; 12];
        matches!(stream.read(&mut buf), Ok(n) if n >= 9 && buf.starts_with(b"HTTP/"))
    }
}

/// moto in server mode, alone, for tests of one function's AWS side.
pub struct Moto {
    pub server: Server,
}

impl Moto {
    pub fn start() -> Self {
        let port = free_port();
        let bin = venv().join("bin").join("moto_server");
        let log =
            std::fs::File::create(std::env::temp_dir().join(format!("lakeops-moto-{port}.log")))
                .unwrap();
        let child = Server::spawn(
            "moto",
            Command::new(bin)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .env("MOTO_PORT", port.to_string())
                .stdout(log.try_clone().unwrap())
                .stderr(log),
        );
        let url = format!("http://127.0.0.1:{port}");
        let mut server = Server {
            child,
            url: url.clone(),
            name: "moto",
        };
        wait_until_answers(&format!("{url}/moto-api/"), "moto", Duration::from_secs(30));
        // An answer from a server that is not ours would make this test share
        // another test's state and lose it when that test ends.
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("moto on port {port} exited ({status}) while the port answered: another server holds it");
        }
        Moto { server }
    }

    pub fn url(&self) -> &str {
        &self.server.url
    }

    /// An SDK config aimed at this moto.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        lakeops_shared::aws::sdk_config_for_emulator(self.url()).await
    }
}

static EMULATOR_BUILT: OnceLock<PathBuf> = OnceLock::new();

/// The Databricks emulator binary, built once per test run.
pub fn emulator_binary() -> PathBuf {
    EMULATOR_BUILT
        .get_or_init(|| {
            let status = Command::new(env!("CARGO"))
                .args([
                    "build",
                    "--quiet",
                    "-p",
                    "databricks-emulator",
                    "--bin",
                    "databricks-emulator",
                ])
                .current_dir(repo_root())
                .status()
                .expect("cargo build of the emulator");
            assert!(status.success(), "building databricks-emulator failed");
            target_dir().join("debug").join("databricks-emulator")
        })
        .clone()
}

/// The Databricks emulator on a free port.
pub struct DatabricksEmulator {
    pub server: Server,
}

impl DatabricksEmulator {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Start with extra flags, e.g. `["--provisioning-seconds", "0"]`.
    pub fn start_with(args: &[&str]) -> Self {
        let mut child = Server::spawn(
            "databricks-emulator",
            Command::new(emulator_binary())
                .args(["--port", "0"])
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit()),
        );
        let stdout = child.stdout.take().unwrap();
        let mut first = String::new();
        BufReader::new(stdout).read_line(&mut first).unwrap();
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("unexpected first line from the emulator: {first}"))
            .trim_end_matches('/')
            .to_string();
        DatabricksEmulator {
            server: Server {
                child,
                url,
                name: "databricks-emulator",
            },
        }
    }

    pub fn url(&self) -> &str {
        &self.server.url
    }
}

/// The whole local stack (moto, cargo lambda watch with the real functions,
/// the Databricks emulator, template.yaml deployed) on free ports, for one
/// test. Stopped on drop; the stack also stops itself if the test process dies.
pub struct LocalStack {
    state_dir: PathBuf,
    pub aws_url: String,
    pub lambda_url: String,
    pub databricks_url: String,
    /// `local/stack.sh outputs`: physical names by logical id, stack outputs, ...
    pub outputs: serde_json::Value,
}

fn stack_command(args: &[&str]) -> Command {
    let mut command = Command::new("bash");
    command
        .arg(repo_root().join("local").join("stack.sh"))
        .args(args)
        .env("LAKEOPS_VENV", venv())
        .env("CARGO_TARGET_DIR", target_dir());
    command
}

impl LocalStack {
    pub fn start() -> Self {
        let (aws, lambda, databricks) = (free_port(), free_port(), free_port());
        let state_dir = std::env::temp_dir().join(format!("lakeops-stack-{aws}"));
        let state = state_dir.to_str().unwrap().to_string();
        let output = stack_command(&[
            "up",
            "--aws-port",
            &aws.to_string(),
            "--lambda-port",
            &lambda.to_string(),
            "--databricks-port",
            &databricks.to_string(),
            "--state-dir",
            &state,
            "--parent-pid",
            &std::process::id().to_string(),
        ])
        .output()
        .expect("local/stack.sh up");
        if !output.status.success() {
            let _ = stack_command(&["down", "--state-dir", &state]).status();
            panic!(
                "local stack did not start:\n{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let outputs = stack_command(&["outputs", "--state-dir", &state])
            .output()
            .expect("local/stack.sh outputs");
        let outputs: serde_json::Value =
            serde_json::from_slice(&outputs.stdout).expect("outputs JSON");
        LocalStack {
            state_dir,
            aws_url: format!("http://127.0.0.1:{aws}"),
            lambda_url: format!("http://127.0.0.1:{lambda}"),
            databricks_url: format!("http://127.0.0.1:{databricks}"),
            outputs,
        }
    }

    /// The physical name (or id) of a template resource, by logical id.
    pub fn resource(&self, logical_id: &str) -> String {
        self.outputs["resources"][logical_id]
            .as_str()
            .unwrap_or_else(|| panic!("no resource {logical_id} in the deployed stack"))
            .to_string()
    }

    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        lakeops_shared::aws::sdk_config_for_emulator(&self.aws_url).await
    }

    /// Redeploy the template with these parameter overrides (`local/stack.sh
    /// deploy --parameter K=V ...`), e.g. `NetworkSleepVpcId`, which the
    /// network-sleep resources need; the outputs are read again.
    pub fn deploy(&mut self, parameters: &[(&str, &str)]) {
        let state = self.state_dir.to_str().unwrap().to_string();
        let mut args = vec!["deploy".to_string(), "--state-dir".into(), state.clone()];
        for (key, value) in parameters {
            args.push("--parameter".into());
            args.push(format!("{key}={value}"));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = stack_command(&args)
            .output()
            .expect("local/stack.sh deploy");
        assert!(
            output.status.success(),
            "deploy {parameters:?}:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let outputs = stack_command(&["outputs", "--state-dir", &state])
            .output()
            .expect("local/stack.sh outputs");
        self.outputs = serde_json::from_slice(&outputs.stdout).expect("outputs JSON");
    }

    /// Starts the state machine of template resource `logical_id` with `input` and
    /// waits for its end; past `timeout` it panics with the history and the logs.
    pub async fn execute(
        &self,
        logical_id: &str,
        input: &serde_json::Value,
        timeout: Duration,
    ) -> Execution {
        use aws_sdk_sfn::types::ExecutionStatus;
        let sfn = aws_sdk_sfn::Client::new(&self.sdk_config().await);
        let started = sfn
            .start_execution()
            .state_machine_arn(self.resource(logical_id))
            .input(input.to_string())
            .send()
            .await
            .unwrap();
        let arn = started.execution_arn().to_string();
        let deadline = Instant::now() + timeout;
        loop {
            let described = sfn
                .describe_execution()
                .execution_arn(&arn)
                .send()
                .await
                .unwrap();
            if *described.status() != ExecutionStatus::Running {
                return Execution {
                    arn,
                    status: described.status().clone(),
                    output: described
                        .output()
                        .map(|o| serde_json::from_str(o).unwrap())
                        .unwrap_or(serde_json::Value::Null),
                    error: described.error().unwrap_or_default().to_string(),
                    cause: described.cause().unwrap_or_default().to_string(),
                };
            }
            if Instant::now() > deadline {
                let history = sfn
                    .get_execution_history()
                    .execution_arn(&arn)
                    .send()
                    .await
                    .map(|h| format!("{:#?}", h.events()))
                    .unwrap_or_default();
                panic!(
                    "{logical_id} {input} still running after {timeout:?}; history: {history}\nlambda logs:\n{}",
                    tail(&self.lambda_logs(), 8000)
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Run `local/stack.sh fire-schedule NAME` and return its output.
    pub fn fire_schedule(&self, name: &str) -> String {
        let output = stack_command(&[
            "fire-schedule",
            name,
            "--state-dir",
            self.state_dir.to_str().unwrap(),
        ])
        .output()
        .expect("fire-schedule");
        assert!(
            output.status.success(),
            "fire-schedule {name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The function logs the stack collected (cargo lambda watch's output).
    pub fn lambda_logs(&self) -> String {
        std::fs::read_to_string(self.state_dir.join("logs").join("lambda.log")).unwrap_or_default()
    }
}

/// A finished Step Functions execution.
#[derive(Debug)]
pub struct Execution {
    pub arn: String,
    pub status: aws_sdk_sfn::types::ExecutionStatus,
    pub output: serde_json::Value,
    pub error: String,
    pub cause: String,
}

/// The last `chars` bytes of `text` (on a character boundary), for long logs in messages.
pub fn tail(text: &str, chars: usize) -> &str {
    let mut start = text.len().saturating_sub(chars);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

impl Drop for LocalStack {
    fn drop(&mut self) {
        let _ = stack_command(&["down", "--state-dir", self.state_dir.to_str().unwrap()])
            .stdout(Stdio::null())
            .status();
    }
}

/// Ask `probe` every 250 ms until it answers `Some`, for at most `timeout`.
/// `None` means the deadline passed; the caller reports what it last saw.
/// For state that other processes change asynchronously (the local stack's
/// notifications and functions), instead of sleeping a fixed time.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = probe().await {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

impl LocalStack {
    /// `events/lake-spec.json` with the layer buckets of this stack: the lake
    /// that catalog-setup builds and catalog-ingest catalogues into.
    pub fn sample_lake_spec(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(repo_root().join("events/lake-spec.json")).unwrap();
        let mut spec: serde_json::Value = serde_json::from_str(&text).unwrap();
        for layer in spec["layers"].as_array_mut().unwrap() {
            let logical = match layer["name"].as_str().unwrap() {
                "raw" => "RawBucket",
                "schematized" => "SchematizedBucket",
                "filtered" => "FilteredBucket",
                "emergency" => "EmergencyBucket",
                "curated" => "CuratedBucket",
                other => panic!("unexpected layer {other} in events/lake-spec.json"),
            };
            layer["bucket"] = serde_json::json!(self.resource(logical));
        }
        spec
    }
}

/// `data`, gzip-compressed, as a file in the lake would be.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// A Parquet file written with the `parquet` crate: `Id` (int64), `name`
/// (string) and `score` (double) per row, and with `flag_and_day` also `ok`
/// (boolean) and `day` (date; 2026-11-21 is day 20 778, counting down).
pub fn parquet_file(rows: usize, flag_and_day: bool) -> Vec<u8> {
    use parquet::data_type::{
        BoolType, ByteArray, ByteArrayType, DoubleType, Int32Type, Int64Type,
    };
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use std::sync::Arc;
    let extra = if flag_and_day {
        "required boolean ok; required int32 day (DATE);"
    } else {
        ""
    };
    let schema = Arc::new(
        parquet::schema::parser::parse_message_type(&format!(
            "message m {{ required int64 Id; required binary name (UTF8); required double score; {extra} }}"
        ))
        .unwrap(),
    );
    let mut buffer = Vec::new();
    let mut writer = SerializedFileWriter::new(
        &mut buffer,
        schema,
        Arc::new(WriterProperties::builder().build()),
    )
    .unwrap();
    let mut group = writer.next_row_group().unwrap();
    let ids: Vec<i64> = (0..rows as i64).collect();
    let names: Vec<ByteArray> = (0..rows)
        .map(|i| ByteArray::from(format!("n{i}").as_str()))
        .collect();
    let scores: Vec<f64> = (0..rows).map(|i| i as f64 / 2.0).collect();
    let flags: Vec<bool> = (0..rows).map(|i| i % 2 == 0).collect();
    let days: Vec<i32> = (0..rows).map(|i| 20_778 - i as i32).collect();
    let mut index = 0;
    while let Some(mut column) = group.next_column().unwrap() {
        match index {
            0 => column.typed::<Int64Type>().write_batch(&ids, None, None),
            1 => column
                .typed::<ByteArrayType>()
                .write_batch(&names, None, None),
            2 => column
                .typed::<DoubleType>()
                .write_batch(&scores, None, None),
            3 => column.typed::<BoolType>().write_batch(&flags, None, None),
            _ => column.typed::<Int32Type>().write_batch(&days, None, None),
        }
        .unwrap();
        column.close().unwrap();
        index += 1;
    }
    group.close().unwrap();
    writer.close().unwrap();
    buffer
}

/// The partitions of a Glue table as (values, location), sorted; `None` when
/// Glue cannot answer (e.g. the table does not exist yet).
pub async fn glue_partitions(
    glue: &aws_sdk_glue::Client,
    database: &str,
    table: &str,
) -> Option<Vec<(Vec<String>, String)>> {
    let output = glue
        .get_partitions()
        .database_name(database)
        .table_name(table)
        .send()
        .await
        .ok()?;
    let mut partitions: Vec<_> = output
        .partitions()
        .iter()
        .map(|p| {
            (
                p.values().to_vec(),
                p.storage_descriptor()
                    .and_then(|s| s.location())
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    partitions.sort();
    Some(partitions)
}
