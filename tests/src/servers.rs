//! Real nats-server and redis-server processes on free ports, in temporary directories,
//! killed (and their directories removed) on drop. Both can be stopped and started again on
//! the same port and store, for fault tests.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// A free TCP port on 127.0.0.1 (bound, read, released).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

fn wait_listening(port: u16, child: &mut Child, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{name} exited early with {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{name} did not listen on {port} within 20 s");
}

/// The server binary: `LEADBUS_TEST_NATS_SERVER` / `LEADBUS_TEST_REDIS_SERVER` when set (to
/// test another release), else Debian's, else whatever PATH finds.
fn binary(name: &str) -> String {
    let var = format!("LEADBUS_TEST_{}", name.replace('-', "_").to_uppercase());
    if let Ok(path) = std::env::var(var) {
        return path;
    }
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return p.display().to_string();
        }
    }
    name.to_owned()
}

/// A nats-server with JetStream.
#[derive(Debug)]
pub struct NatsServer {
    /// Port it listens on.
    pub port: u16,
    dir: TempDir,
    child: Option<Child>,
    config: Option<(PathBuf, Vec<(String, String)>)>,
}

impl NatsServer {
    /// Starts a server on a free port with a fresh store.
    pub fn start() -> NatsServer {
        NatsServer::start_configured(None)
    }

    /// Starts a server with the configuration file `config` (the port and store still come
    /// from the command line) and `env` in its environment.
    pub fn start_with_config(config: &Path, env: &[(&str, &str)]) -> NatsServer {
        let env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        NatsServer::start_configured(Some((config.to_owned(), env)))
    }

    fn start_configured(config: Option<(PathBuf, Vec<(String, String)>)>) -> NatsServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut server = NatsServer {
            port: free_port(),
            dir,
            child: None,
            config,
        };
        server.restart();
        server
    }

    /// Client URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The JetStream store directory.
    pub fn store(&self) -> PathBuf {
        self.dir.path().join("js")
    }

    /// (Re)starts the process on the same port and store.
    pub fn restart(&mut self) {
        self.kill();
        let mut command = Command::new(binary("nats-server"));
        if let Some((file, env)) = &self.config {
            command.arg("-c").arg(file).envs(env.iter().cloned());
        }
        let mut child = command
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.store())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server on PATH (apt-get install nats-server)");
        wait_listening(self.port, &mut child, "nats-server");
        self.child = Some(child);
    }

    /// Kills the process (SIGKILL); the store stays.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A redis-server without persistence.
#[derive(Debug)]
pub struct RedisServer {
    /// Port it listens on.
    pub port: u16,
    dir: TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server on a free port.
    pub fn start() -> RedisServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut server = RedisServer {
            port: free_port(),
            dir,
            child: None,
        };
        server.restart();
        server
    }

    /// Client URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the process on the same port.
    pub fn restart(&mut self) {
        self.kill();
        let mut child = Command::new(binary("redis-server"))
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--enable-debug-command",
                "local",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (apt-get install redis-server)");
        wait_listening(self.port, &mut child, "redis-server");
        self.child = Some(child);
    }

    /// Kills the process.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
