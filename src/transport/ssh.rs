//! The SSH transport, through the openssh crate: one multiplexed master connection per host
//! (native mux), which honours `~/.ssh/config`; strict host-key checking unless the inventory
//! or a flag allows accept-new (never "no"); a private, 0700 control directory per run.
//!
//! Every argument goes through openssh's `.arg()` escaping. Commands run as the SSH user, and
//! through `sudo -n -u <os_user>` when the SSH user is not the OS user. Knows nothing about
//! PostgreSQL.

use std::borrow::Cow;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use openssh::{ControlPersist, ForwardType, KnownHosts, Session, SessionBuilder, Socket, Stdio};
use tokio::io::AsyncWriteExt;
use tokio::sync::{Mutex, Semaphore};

use super::{collect, Cmd, LineSink, Output, Spawned, Transport};

/// How to reach one host over SSH.
#[derive(Debug, Clone)]
pub struct SshTarget {
    /// The host's inventory name (for messages and its forwarded-socket directory).
    pub host: String,
    /// The ssh destination (an address, or a `~/.ssh/config` alias).
    pub destination: String,
    /// The SSH login user (`access.ssh.user`, default `postgres.os_user`).
    pub user: String,
    /// The SSH port (the host's `ssh_port`, default `access.ssh.port`).
    pub port: u16,
    /// A private key file on this machine (`access.ssh.identity_file`); `None`: ssh's own choice.
    pub identity_file: Option<PathBuf>,
    /// A known_hosts file on this machine (`access.ssh.known_hosts_file`); `None`: ssh's default.
    pub known_hosts_file: Option<PathBuf>,
    /// An ssh config file on this machine (`access.ssh.config_file`); `None`: ssh's defaults.
    pub config_file: Option<PathBuf>,
    /// Add an unknown host key on first use (flag or `host_keys: accept-new`); never a changed one.
    pub accept_new_host_keys: bool,
    /// ssh's `ConnectTimeout` (`timeouts.connect`).
    pub connect_timeout: Duration,
    /// The PostgreSQL OS user commands run as: through `sudo -n -u` when it is not `user`.
    pub os_user: String,
}

/// One host reached over SSH.
pub struct SshTransport {
    target: SshTarget,
    session: Arc<Session>,
    /// Caps concurrent channels below sshd's MaxSessions (10 by default).
    channels: Arc<Semaphore>,
    forward_dir: PathBuf,
    forwards: Mutex<Vec<(String, u16)>>,
    /// The master's pid, as it reported it (so a run can wait until it has exited).
    master_pid: Option<u32>,
}

impl SshTransport {
    /// Opens the master connection. `control_dir` must be private to this run (0700).
    pub async fn connect(target: SshTarget, control_dir: &Path) -> anyhow::Result<Self> {
        let mut b = SessionBuilder::default();
        b.user(target.user.clone())
            .port(target.port)
            .known_hosts_check(if target.accept_new_host_keys {
                KnownHosts::Add
            } else {
                KnownHosts::Strict
            })
            .connect_timeout(target.connect_timeout)
            .server_alive_interval(Duration::from_secs(5))
            .control_directory(control_dir)
            // A SIGKILLed pgrepl must not leave masters behind forever.
            .control_persist(ControlPersist::IdleFor(
                NonZeroUsize::new(300).expect("non-zero"),
            ));
        if let Some(k) = &target.identity_file {
            b.keyfile(k);
        }
        if let Some(k) = &target.known_hosts_file {
            b.user_known_hosts_file(k);
        }
        if let Some(c) = &target.config_file {
            b.config_file(c);
        }
        // The destination was validated at load time (no leading '-', no metacharacters):
        // openssh passes it to ssh without a "--".
        let session = b.connect_mux(&target.destination).await.map_err(|e| {
            // The top-level text is generic; ssh's own reason is in the source chain.
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            anyhow::anyhow!("{}", explain_connect_error(&msg, &target))
        })?;
        let forward_dir = control_dir.join(format!("pg-{}", target.host));
        let master_pid = master_pid(session.control_socket()).await;
        Ok(SshTransport {
            target,
            session: Arc::new(session),
            channels: Arc::new(Semaphore::new(8)),
            forward_dir,
            forwards: Mutex::new(Vec::new()),
            master_pid,
        })
    }
}

/// The pid the master behind `ctl` reports (its alive check).
async fn master_pid(ctl: &Path) -> Option<u32> {
    let mut c = openssh_mux_client::Connection::connect(ctl).await.ok()?;
    c.send_alive_check().await.ok().map(|p| p.get())
}

/// The connection error with what to do about it. For host keys: which `known_hosts` file is
/// read, and a way to add a key only after comparing its fingerprint with the host's own; a
/// changed key is never to be accepted blindly (accept-new does not accept one either).
fn explain_connect_error(msg: &str, target: &SshTarget) -> String {
    let lower = msg.to_lowercase();
    let file = target
        .known_hosts_file
        .as_ref()
        .map(|f| f.display().to_string())
        .unwrap_or_else(|| "~/.ssh/known_hosts".into());
    let port = if target.port == 22 {
        String::new()
    } else {
        format!(" -p {}", target.port)
    };
    let verify = format!(
        "ssh-keyscan{port} -t ed25519 {d} > /tmp/{h}.key && ssh-keygen -lf /tmp/{h}.key, compare that \
         fingerprint with the one the host itself shows (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub \
         on its console), and only then: cat /tmp/{h}.key >> {file}",
        d = target.destination,
        h = target.host
    );
    if lower.contains("has changed") || lower.contains("identification has changed") {
        format!(
            "{msg}\nthe host key of {} has CHANGED since it was recorded in {file}: that is either a \
             reinstalled host or someone in between. Find out which before anything else; if the host \
             was reinstalled, remove the old key (ssh-keygen -R {} -f {file}) and add the new one: {verify}",
            target.destination, target.destination
        )
    } else if lower.contains("host key verification failed")
        || lower.contains("no matching host key")
        || lower.contains("host key is known")
    {
        format!(
            "{msg}\nthe host key of {} is not in {file}: {verify}; or, to trust a host on first use, set \
             access.ssh.host_keys: accept-new in the inventory (or pass --accept-new-host-keys)",
            target.destination
        )
    } else {
        msg.trim().to_string()
    }
}

#[async_trait::async_trait]
impl Transport for SshTransport {
    fn host(&self) -> &str {
        &self.target.host
    }

    fn describe(&self) -> String {
        format!(
            "ssh {}@{}:{}",
            self.target.user, self.target.destination, self.target.port
        )
    }

    async fn run(&self, cmd: &Cmd, sink: Option<LineSink>) -> anyhow::Result<Output> {
        tracing::debug!(host = %self.target.host, argv = ?cmd.logged_argv(), "run");
        let _permit = self.channels.acquire().await?;
        let argv = if self.target.user != self.target.os_user {
            cmd.clean_argv(&["sudo", "-n", "-u", &self.target.os_user, "--"])
        } else {
            cmd.clean_argv(&[])
        };
        let mut c = self.session.command(argv[0].clone());
        c.args(&argv[1..])
            .stdin(if cmd.stdin.is_some() || cmd.hold_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c
            .spawn()
            .await
            .with_context(|| format!("could not start {} over ssh", cmd.program()))?;
        if let Some(data) = &cmd.stdin {
            let Some(mut stdin) = child.stdin().take() else {
                anyhow::bail!("no stdin")
            };
            stdin
                .write_all(data)
                .await
                .with_context(|| format!("could not write to {}", cmd.program()))?;
            stdin.shutdown().await.ok();
        }
        // Held open until the command ends; closing it (or losing the channel) stops it.
        let held = if cmd.hold_stdin {
            child.stdin().take()
        } else {
            None
        };
        let (stdout, stderr_tail) =
            collect(child.stdout().take(), child.stderr().take(), sink).await;
        let status = child.wait().await.context("lost the ssh channel")?;
        drop(held);
        Ok(Output {
            code: status.code(),
            stdout,
            stderr_tail,
        })
    }

    async fn spawn(&self, cmd: &Cmd) -> anyhow::Result<Spawned> {
        tracing::debug!(host = %self.target.host, argv = ?cmd.logged_argv(), "spawn");
        let permit = self.channels.clone().acquire_owned().await?;
        let argv = if self.target.user != self.target.os_user {
            cmd.clean_argv(&["sudo", "-n", "-u", &self.target.os_user, "--"])
        } else {
            cmd.clean_argv(&[])
        };
        let mut c = self.session.clone().arc_command(argv[0].clone());
        c.args(&argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = c
            .spawn()
            .await
            .with_context(|| format!("could not start {} over ssh", cmd.program()))?;
        let stdin = child
            .stdin()
            .take()
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncWrite + Send + Unpin>);
        let stdout = child.stdout().take().context("no stdout")?;
        let stdout: Box<dyn tokio::io::AsyncRead + Send + Unpin> = Box::new(stdout);
        Ok(Spawned {
            stdin,
            stdout: tokio::io::BufReader::new(stdout),
            exit: Box::pin(async move { child.wait().await.ok().and_then(|s| s.code()) }),
            _guard: Some(Box::new(permit)),
        })
    }

    async fn pg_socket_dir(&self, socket_dir: &str, port: u16) -> anyhow::Result<PathBuf> {
        let mut fw = self.forwards.lock().await;
        let dir = self.forward_dir.join(port.to_string());
        if fw.iter().any(|(d, p)| d == socket_dir && *p == port) {
            return Ok(dir);
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("could not create {}", dir.display()))?;
        let name = format!(".s.PGSQL.{port}");
        let local = dir.join(&name);
        let remote = Path::new(socket_dir).join(&name);
        let _ = std::fs::remove_file(&local);
        self.session
            .request_port_forward(
                ForwardType::Local,
                Socket::UnixSocket {
                    path: Cow::Borrowed(local.as_path()),
                },
                Socket::UnixSocket {
                    path: Cow::Borrowed(remote.as_path()),
                },
            )
            .await
            .with_context(|| format!("could not forward {} over ssh", remote.display()))?;
        fw.push((socket_dir.to_string(), port));
        Ok(dir)
    }

    async fn alive(&self) -> bool {
        self.session.check().await.is_ok()
    }

    async fn close(&self) {
        // Dropping the last Arc<Session> sends `-O exit` to the master.
    }

    fn master_pid(&self) -> Option<u32> {
        self.master_pid
    }
}
