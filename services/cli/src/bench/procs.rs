//! The processes a bench run owns: nats-server and redis-server on free ports (unless the
//! caller points at running ones) and the two services, started from this very binary as
//! `leadbus inference` and `leadbus gateway`, so each has its own address space whose peak
//! resident memory can be read from `/proc` and reset between scenarios.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use leadbus_shared::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tracing::{debug, info, warn};

/// One child process and what it is.
#[derive(Debug)]
struct Proc {
    name: &'static str,
    child: Child,
    log: Option<PathBuf>,
}

impl Proc {
    fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

/// Addresses the bench talks to.
#[derive(Debug, Clone)]
pub(crate) struct Endpoints {
    /// NATS URL.
    pub(crate) nats_url: String,
    /// Redis URL.
    pub(crate) redis_url: String,
    /// Gateway address (HTTP and WebSocket).
    pub(crate) gateway: SocketAddr,
    /// Inference health address.
    pub(crate) inference: SocketAddr,
}

/// The servers and services of one bench run. Everything it started is stopped by
/// [`Procs::stop`]; a dropped `Procs` kills its children.
#[derive(Debug)]
pub(crate) struct Procs {
    procs: Vec<Proc>,
    versions: BTreeMap<String, String>,
    /// Where logs and server data live; removed at the end.
    dir: tempfile::TempDir,
    /// The addresses in use.
    pub(crate) endpoints: Endpoints,
}

/// A free TCP port on 127.0.0.1. The port is released before use, so another process could
/// take it in between; on this machine that race has not been seen.
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot bind an ephemeral port")?;
    Ok(listener.local_addr()?.port())
}

/// The binary of a server: the first on PATH (as `leadbus run` uses), else Debian's.
fn server_binary(name: &str) -> String {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).chain(["/usr/sbin".into(), "/usr/bin".into()]);
    for dir in dirs {
        let p = dir.join(name);
        if p.is_file() {
            return p.display().to_string();
        }
    }
    name.to_owned()
}

/// The first line `BIN --version` prints.
async fn version_of(bin: &str) -> Option<String> {
    let out = Command::new(bin).arg("--version").output().await.ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    Some(text.lines().next()?.trim().to_owned())
}

async fn reachable(addr: SocketAddr) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

impl Procs {
    /// Starts the servers (unless URLs are given) and both services, and waits until the
    /// inference service reports every consumer open and the gateway answers.
    pub(crate) async fn start(
        config: &Config,
        nats_url: Option<String>,
        redis_url: Option<String>,
    ) -> anyhow::Result<Procs> {
        let dir = tempfile::Builder::new()
            .prefix("leadbus-bench-")
            .tempdir()
            .context("cannot create a temporary directory")?;
        let mut procs = Vec::new();
        let mut versions = BTreeMap::new();

        let nats_url = match nats_url {
            Some(url) => url,
            None => {
                let port = free_port()?;
                let store = dir.path().join("nats");
                let args = [
                    "-a".to_owned(),
                    "127.0.0.1".to_owned(),
                    "-p".to_owned(),
                    port.to_string(),
                    "-js".to_owned(),
                    "-sd".to_owned(),
                    store.display().to_string(),
                ];
                let bin = server_binary("nats-server");
                versions.extend(version_of(&bin).await.map(|v| ("nats-server".into(), v)));
                procs.push(spawn_server("nats-server", &bin, &args, port, dir.path()).await?);
                format!("nats://127.0.0.1:{port}")
            }
        };
        let redis_url = match redis_url {
            Some(url) => url,
            None => {
                let port = free_port()?;
                let args = [
                    "--bind".to_owned(),
                    "127.0.0.1".to_owned(),
                    "--port".to_owned(),
                    port.to_string(),
                    "--save".to_owned(),
                    String::new(),
                    "--appendonly".to_owned(),
                    "no".to_owned(),
                    "--dir".to_owned(),
                    dir.path().display().to_string(),
                ];
                let bin = server_binary("redis-server");
                versions.extend(version_of(&bin).await.map(|v| ("redis-server".into(), v)));
                procs.push(spawn_server("redis-server", &bin, &args, port, dir.path()).await?);
                format!("redis://127.0.0.1:{port}")
            }
        };
        let endpoints = Endpoints {
            nats_url,
            redis_url,
            gateway: SocketAddr::from(([127, 0, 0, 1], free_port()?)),
            inference: SocketAddr::from(([127, 0, 0, 1], free_port()?)),
        };

        let mut this = Procs {
            procs,
            versions,
            dir,
            endpoints,
        };
        // Inference first: it creates the streams and consumers the gateway reads.
        this.spawn_service("inference", config).await?;
        this.wait_healthy("inference", this.endpoints.inference, "/healthz")
            .await?;
        this.spawn_service("gateway", config).await?;
        this.wait_healthy("gateway", this.endpoints.gateway, "/healthz")
            .await?;
        Ok(this)
    }

    async fn spawn_service(&mut self, name: &'static str, config: &Config) -> anyhow::Result<()> {
        let exe = std::env::current_exe().context("cannot find the leadbus binary")?;
        let log = self.dir.path().join(format!("{name}.log"));
        let file = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        // The data folder is given absolute, so the child finds it whatever its directory.
        let data_dir = std::path::absolute(&config.data_dir).unwrap_or(config.data_dir.clone());
        let e = &self.endpoints;
        let mut cmd = Command::new(exe);
        cmd.arg(name)
            .env("LEADBUS_NATS_URL", &e.nats_url)
            .env("LEADBUS_REDIS_URL", &e.redis_url)
            .env("LEADBUS_GATEWAY_LISTEN", e.gateway.to_string())
            .env("LEADBUS_INFERENCE_LISTEN", e.inference.to_string())
            .env("LEADBUS_DATA_DIR", data_dir)
            .env("LEADBUS_JWT_SECRET", &config.jwt_secret)
            .env("LEADBUS_STATE_DIR", self.dir.path().join("state"))
            .env(
                "RUST_LOG",
                std::env::var("LEADBUS_BENCH_SERVICE_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .kill_on_drop(true);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start leadbus {name}"))?;
        info!(service = name, pid = child.id(), "started");
        self.procs.push(Proc {
            name,
            child,
            log: Some(log),
        });
        Ok(())
    }

    async fn wait_healthy(
        &mut self,
        name: &'static str,
        addr: SocketAddr,
        path: &str,
    ) -> anyhow::Result<()> {
        for _ in 0..300 {
            if let Some(p) = self.procs.iter_mut().find(|p| p.name == name)
                && let Ok(Some(status)) = p.child.try_wait()
            {
                let tail = p.log.as_deref().map(log_tail).unwrap_or_default();
                bail!("leadbus {name} exited early ({status}):\n{tail}");
            }
            if http_status(addr, path).await == Some(200) {
                debug!(service = name, "healthy");
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("leadbus {name} did not report healthy at http://{addr}{path} within 30 s")
    }

    /// Peak resident memory (VmHWM) of each process, in KiB, keyed by name.
    pub(crate) fn peak_memory(&self) -> BTreeMap<String, u64> {
        self.procs
            .iter()
            .filter_map(|p| Some((p.name.to_owned(), vm_hwm_kib(p.pid()?)?)))
            .collect()
    }

    /// CPU time (user + system) each process has used so far, in seconds, keyed by name;
    /// the bench itself is `bench`.
    pub(crate) fn cpu_seconds(&self) -> BTreeMap<String, f64> {
        let mut out: BTreeMap<String, f64> = self
            .procs
            .iter()
            .filter_map(|p| Some((p.name.to_owned(), cpu_seconds(&p.pid()?.to_string())?)))
            .collect();
        if let Some(own) = cpu_seconds("self") {
            out.insert("bench".into(), own);
        }
        out
    }

    /// Versions of the servers this run started.
    pub(crate) fn server_versions(&self) -> BTreeMap<String, String> {
        self.versions.clone()
    }

    /// Resets each process's peak to its current size, so the next reading is the peak of
    /// what follows. Returns false where the kernel refused (the reading then covers the whole
    /// life of the process).
    pub(crate) fn reset_peaks(&self) -> bool {
        let mut all = true;
        for p in &self.procs {
            let Some(pid) = p.pid() else { continue };
            if std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_err() {
                all = false;
            }
        }
        all
    }

    /// True when a service or server this run started has exited.
    pub(crate) fn someone_died(&mut self) -> Option<String> {
        for p in &mut self.procs {
            if let Ok(Some(status)) = p.child.try_wait() {
                let tail = p.log.as_deref().map(log_tail).unwrap_or_default();
                return Some(format!("{} exited ({status}) {tail}", p.name));
            }
        }
        None
    }

    /// Stops the services (SIGTERM, then SIGKILL after 10 s), then the servers. With
    /// `keep_logs` the folder with their logs (and the servers' data) is left in place and
    /// returned; otherwise it is removed.
    pub(crate) async fn stop(mut self, keep_logs: bool) -> Option<PathBuf> {
        // Services before servers: they drain against live servers.
        self.procs.reverse();
        for p in &mut self.procs {
            if let Some(pid) = p.pid() {
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(pid.to_string())
                    .status()
                    .await;
            }
            if tokio::time::timeout(Duration::from_secs(10), p.child.wait())
                .await
                .is_err()
            {
                warn!(process = p.name, "did not stop within 10 s; killing it");
                // Already exiting or gone: either way it is not running afterwards.
                let _ = p.child.kill().await;
            }
            debug!(process = p.name, "stopped");
        }
        keep_logs.then(|| self.dir.keep())
    }
}

async fn spawn_server(
    name: &'static str,
    bin: &str,
    args: &[String],
    port: u16,
    dir: &Path,
) -> anyhow::Result<Proc> {
    let log = dir.join(format!("{name}.log"));
    let file =
        std::fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
    let mut child = match Command::new(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(file))
        .kill_on_drop(true)
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("{name} is not installed (Debian: apt-get install {name}); or pass its URL")
        }
        Err(e) => return Err(e).with_context(|| format!("cannot start {name}")),
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    for _ in 0..200 {
        if reachable(addr).await {
            info!(server = name, %addr, pid = child.id(), "started");
            return Ok(Proc {
                name,
                child,
                log: Some(log),
            });
        }
        if let Ok(Some(status)) = child.try_wait() {
            bail!("{name} exited early ({status}):\n{}", log_tail(&log));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{name} did not listen on {addr} within 10 s")
}

/// The status code of `GET path`, or `None` when nothing sensible answered.
async fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let ask = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = [0u8; 32];
        let n = stream.read(&mut head).await.ok()?;
        let line = std::str::from_utf8(&head[..n]).ok()?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(2), ask)
        .await
        .ok()
        .flatten()
}

/// VmHWM of a process, in KiB.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime of `/proc/{pid}/stat`, in seconds (the kernel counts in 1/100 s ticks on
/// every Linux this runs on).
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// The last lines of a log, for an error message.
fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
