//! The local transport: the same operations on this machine. When pgrepl runs as root it runs
//! every command as the inventory's OS user through `runuser` (PostgreSQL refuses to run as
//! root); run as that user, it runs them directly. It runs argv, never a shell string.

use std::path::PathBuf;
use std::process::Stdio;

use anyhow::Context as _;
use tokio::io::AsyncWriteExt;

use super::{collect, Cmd, LineSink, Output, Spawned, Transport};

/// Runs commands on this machine.
pub struct LocalTransport {
    host: String,
    /// `Some(user)` when pgrepl is root and must switch to the OS user.
    switch_to: Option<String>,
}

impl LocalTransport {
    /// Fails unless pgrepl is root or already the OS user.
    pub fn new(host: &str, os_user: &str) -> anyhow::Result<Self> {
        let me = current_user();
        let switch_to = if me.as_deref() == Some(os_user) {
            None
        } else if unsafe { libc::geteuid() } == 0 {
            Some(os_user.to_string())
        } else {
            anyhow::bail!(
                "the local transport runs PostgreSQL as {os_user}, but pgrepl runs as {}; \
                 run pgrepl as root or as {os_user}",
                me.unwrap_or_else(|| "an unknown user".into())
            );
        };
        Ok(LocalTransport {
            host: host.to_string(),
            switch_to,
        })
    }
}

/// The name of the effective user, from the password database.
pub fn current_user() -> Option<String> {
    // SAFETY: getpwuid returns a pointer into static storage or NULL; we copy the name at once.
    unsafe {
        let pw = libc::getpwuid(libc::geteuid());
        if pw.is_null() {
            return None;
        }
        Some(
            std::ffi::CStr::from_ptr((*pw).pw_name)
                .to_string_lossy()
                .into_owned(),
        )
    }
}

#[async_trait::async_trait]
impl Transport for LocalTransport {
    fn host(&self) -> &str {
        &self.host
    }

    fn describe(&self) -> String {
        match &self.switch_to {
            Some(u) => format!("local (as {u})"),
            None => "local".to_string(),
        }
    }

    async fn run(&self, cmd: &Cmd, sink: Option<LineSink>) -> anyhow::Result<Output> {
        tracing::debug!(host = %self.host, argv = ?cmd.logged_argv(), "run");
        let argv = match &self.switch_to {
            Some(u) => cmd.clean_argv(&["runuser", "-u", u, "--"]),
            None => cmd.clean_argv(&[]),
        };
        let mut c = tokio::process::Command::new(&argv[0]);
        c.args(&argv[1..])
            .stdin(if cmd.stdin.is_some() || cmd.hold_stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = c
            .spawn()
            .with_context(|| format!("could not start {}", cmd.program()))?;
        if let Some(data) = &cmd.stdin {
            let Some(mut stdin) = child.stdin.take() else {
                anyhow::bail!("no stdin")
            };
            stdin
                .write_all(data)
                .await
                .with_context(|| format!("could not write to {}", cmd.program()))?;
        }
        // Held open until the command ends; closing it (pgrepl exiting) stops it.
        let held = if cmd.hold_stdin {
            child.stdin.take()
        } else {
            None
        };
        let (stdout, stderr_tail) = collect(child.stdout.take(), child.stderr.take(), sink).await;
        let status = child.wait().await?;
        drop(held);
        Ok(Output {
            code: status.code(),
            stdout,
            stderr_tail,
        })
    }

    async fn spawn(&self, cmd: &Cmd) -> anyhow::Result<Spawned> {
        tracing::debug!(host = %self.host, argv = ?cmd.logged_argv(), "spawn");
        let argv = match &self.switch_to {
            Some(u) => cmd.clean_argv(&["runuser", "-u", u, "--"]),
            None => cmd.clean_argv(&[]),
        };
        let mut child = tokio::process::Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("could not start {}", cmd.program()))?;
        let stdin = child
            .stdin
            .take()
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncWrite + Send + Unpin>);
        let stdout = child.stdout.take().context("no stdout")?;
        let stdout: Box<dyn tokio::io::AsyncRead + Send + Unpin> = Box::new(stdout);
        Ok(Spawned {
            stdin,
            stdout: tokio::io::BufReader::new(stdout),
            exit: Box::pin(async move { child.wait().await.ok().and_then(|s| s.code()) }),
            _guard: None,
        })
    }

    async fn pg_socket_dir(&self, socket_dir: &str, _port: u16) -> anyhow::Result<PathBuf> {
        Ok(PathBuf::from(socket_dir))
    }

    async fn close(&self) {}
}
