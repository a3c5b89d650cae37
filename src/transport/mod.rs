//! How pgrepl runs commands on a host: one trait, two implementations (`ssh` through the openssh
//! crate, `local` on this machine). A command is an argv list plus environment and optional
//! stdin; it runs as the inventory's OS user; its output streams line by line to a callback,
//! and a bounded tail of stderr is kept for errors. Knows nothing about PostgreSQL.
//!
//! Each transport logs every command it runs or spawns at DEBUG (`-vv`): the host and
//! [`Cmd::logged_argv`] (environment values hidden, stdin never shown).

pub mod local;
pub mod ssh;
#[cfg(test)]
mod watch_tests;

pub use local::current_user;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt};

/// One command: argv, extra environment, stdin. Never a shell string.
#[derive(Clone, Default)]
pub struct Cmd {
    /// The program (a path, or a name looked up in `PATH`), then its arguments; no shell.
    pub argv: Vec<String>,
    /// Extra environment `(name, value)`, passed as an `env K=V` prefix (values hidden in logs).
    pub env: Vec<(String, String)>,
    /// Bytes written to stdin, then closed; `None`: stdin is /dev/null (unless `hold_stdin`).
    pub stdin: Option<Vec<u8>>,
    /// Keep stdin open (and empty) until the command ends: see [`Cmd::until_disconnect`].
    pub hold_stdin: bool,
}

/// Runs `"$@"` in its own process group (session) and ends that whole group — verified gone:
/// SIGTERM, SIGKILL after 5 s — when stdin reaches EOF, which is what happens when pgrepl
/// exits, is killed, or loses the SSH connection: a long command (a base backup) never
/// outlives the pgrepl run that started it. Background jobs of a non-interactive shell read
/// /dev/null, so stdin is passed to the watcher as fd 3.
///
/// `kill -s SIG -- -PGID`: dash reads `kill -s TERM -PGID` as an unknown option and signals
/// nothing (the group was never killed, only the first process by the fallback that was here).
/// The group is also ended when the command itself ends: `pg_basebackup` forks a WAL streaming
/// child, and a parent killed by a signal (SIGTERM, or SIGPIPE when the connection closes and it
/// writes progress) runs no exit handler to stop that child, which streams on, holding the
/// slot, re-parented to PID 1. So the group — not the first process — is what is ended.
const WATCH: &str = r#"exec 3<&0 </dev/null
setsid "$@" 3<&- &
child=$!
end_group() {
  kill -s TERM -- "-$child" 2>/dev/null || return 0
  kill -s CONT -- "-$child" 2>/dev/null
  i=0
  while kill -s 0 -- "-$child" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -eq 50 ]; then kill -s KILL -- "-$child" 2>/dev/null; fi
    if [ "$i" -gt 100 ]; then return 1; fi
    sleep 0.1
  done
}
( while read -r _; do :; done <&3; end_group ) 2>/dev/null &
watcher=$!
exec 3<&-
wait "$child"
status=$?
end_group
kill "$watcher" 2>/dev/null
exit "$status""#;

/// Environment variables unset for every command pgrepl runs: libpq's connection settings
/// (PostgreSQL documentation, "Environment Variables" of libpq) and the server tools' own
/// (`PGDATA`, `PGCTLTIMEOUT`), whatever the caller's environment or the remote login sets.
pub const CLEARED_ENV: &[&str] = &[
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGDATABASE",
    "PGUSER",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGREQUIREAUTH",
    "PGCHANNELBINDING",
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGOPTIONS",
    "PGAPPNAME",
    "PGSSLMODE",
    "PGREQUIRESSL",
    "PGSSLNEGOTIATION",
    "PGSSLCOMPRESSION",
    "PGSSLCERT",
    "PGSSLKEY",
    "PGSSLCERTMODE",
    "PGSSLROOTCERT",
    "PGSSLCRL",
    "PGSSLCRLDIR",
    "PGSSLSNI",
    "PGREQUIREPEER",
    "PGSSLMINPROTOCOLVERSION",
    "PGSSLMAXPROTOCOLVERSION",
    "PGGSSENCMODE",
    "PGKRBSRVNAME",
    "PGGSSLIB",
    "PGGSSDELEGATION",
    "PGCONNECT_TIMEOUT",
    "PGCLIENTENCODING",
    "PGTARGETSESSIONATTRS",
    "PGLOADBALANCEHOSTS",
    "PGDATESTYLE",
    "PGTZ",
    "PGGEQO",
    "PGSYSCONFDIR",
    "PGLOCALEDIR",
    "PGDATA",
    "PGCTLTIMEOUT",
];

impl Cmd {
    /// A command running `program` (a path, or a name looked up in `PATH`) without arguments.
    pub fn new(program: impl Into<String>) -> Self {
        Cmd {
            argv: vec![program.into()],
            ..Cmd::default()
        }
    }
    /// Appends one argument, passed as is (never through a shell).
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.argv.push(a.into());
        self
    }
    /// Appends arguments, in order.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, it: I) -> Self {
        self.argv.extend(it.into_iter().map(Into::into));
        self
    }
    /// Adds an environment variable for the command (its value is hidden in logs).
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }
    /// Sets the bytes fed to stdin (may be secret: `Debug` shows only their length).
    pub fn stdin(mut self, data: Vec<u8>) -> Self {
        self.stdin = Some(data);
        self
    }

    /// Wraps the command so that it is killed (with its process group) when pgrepl goes away.
    pub fn until_disconnect(self) -> Cmd {
        assert!(
            self.stdin.is_none(),
            "until_disconnect commands read no stdin"
        );
        let mut argv: Vec<String> = ["sh", "-c", WATCH, "pgrepl-watch"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        argv.extend(self.full_argv());
        Cmd {
            argv,
            env: Vec::new(),
            stdin: None,
            hold_stdin: true,
        }
    }

    /// The argv with the environment as an `env K=V ...` prefix: how both transports run it,
    /// so that the environment survives `sudo`, `runuser` and ssh (which forwards no env).
    pub fn full_argv(&self) -> Vec<String> {
        if self.env.is_empty() {
            return self.argv.clone();
        }
        let mut v = vec!["env".to_string()];
        v.extend(self.env.iter().map(|(k, val)| format!("{k}={val}")));
        v.extend(self.argv.iter().cloned());
        v
    }

    /// What a transport runs: `prefix` (a user switch, or nothing), then `env` with every
    /// variable of [`CLEARED_ENV`] unset, then the command's own environment and argv. So no
    /// command — nor a server it starts — sees the caller's (or the remote login's) libpq
    /// settings: a CI job's `PGPASSWORD` for its application, `PGHOST`, `PGSSLMODE`, `PGSERVICE`…
    pub fn clean_argv(&self, prefix: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = prefix.iter().map(|s| s.to_string()).collect();
        v.push("env".into());
        for name in CLEARED_ENV {
            v.push("-u".into());
            v.push(name.to_string());
        }
        v.extend(self.env.iter().map(|(k, val)| format!("{k}={val}")));
        v.extend(self.argv.iter().cloned());
        v
    }

    /// The argv as logged with `-vv`: without the [`Cmd::until_disconnect`] wrapper, with every
    /// environment value hidden (`env PGPASSFILE=…`), and with the body of a fixed script that
    /// takes its inputs as named positional parameters (`sh -c … pgrepl-write FILE MODE`) shown
    /// as `…`. stdin is never shown.
    pub fn logged_argv(&self) -> Vec<String> {
        let wrapped = self.hold_stdin
            && self.argv.len() > 4
            && self.argv[0] == "sh"
            && self.argv[2] == WATCH
            && self.argv[3] == "pgrepl-watch";
        let mut inner = self
            .argv
            .iter()
            .skip(if wrapped { 4 } else { 0 })
            .peekable();
        let mut v = Vec::with_capacity(self.argv.len() + self.env.len() + 1);
        let mut env_keys: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        if inner.peek().is_some_and(|a| *a == "env") {
            inner.next();
            while let Some(kv) = inner.next_if(|a| a.contains('=')) {
                env_keys.push(kv.split('=').next().unwrap_or(""));
            }
        }
        if !env_keys.is_empty() {
            v.push("env".to_string());
            v.extend(env_keys.iter().map(|k| format!("{k}=…")));
        }
        let first = v.len();
        v.extend(inner.cloned());
        if v.len() >= first + 4 && v[first] == "sh" && v[first + 1] == "-c" {
            v[first + 2] = "…".into();
        }
        v
    }

    /// The program's base name, for messages (`pg_basebackup`, `initdb`).
    pub fn program(&self) -> &str {
        let first = if self.hold_stdin { 4 } else { 0 };
        let mut it = self.argv.iter().skip(first);
        let mut p = it.next().map(String::as_str).unwrap_or("");
        if p == "env" {
            p = it
                .find(|a| !a.contains('='))
                .map(String::as_str)
                .unwrap_or(p);
        }
        p.rsplit('/').next().unwrap_or(p)
    }
}

/// stdin may carry a secret (a password file's content): Debug shows only its length.
impl fmt::Debug for Cmd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cmd")
            .field("argv", &self.argv)
            .field("env", &self.env)
            .field(
                "stdin",
                &self.stdin.as_ref().map(|s| format!("<{} bytes>", s.len())),
            )
            .field("hold_stdin", &self.hold_stdin)
            .finish()
    }
}

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// The command's standard output.
    Stdout,
    /// The command's standard error.
    Stderr,
}

/// Receives each output line as it arrives.
pub type LineSink = Arc<dyn Fn(Stream, &str) + Send + Sync>;

/// A finished command.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit status; `None` if killed by a signal.
    pub code: Option<i32>,
    /// What the command wrote to stdout (lossy UTF-8, cut after the first 16 MiB).
    pub stdout: String,
    /// The last lines of stderr (at most [`STDERR_TAIL`]).
    pub stderr_tail: Vec<String>,
}

/// How many stderr lines are kept for error messages.
pub const STDERR_TAIL: usize = 20;
const MAX_STDOUT: usize = 16 << 20;

impl Output {
    /// Did the command exit with status 0?
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
    /// "exited with status N" / "was killed by a signal".
    pub fn describe_status(&self) -> String {
        match self.code {
            Some(c) => format!("exited with status {c}"),
            None => "was killed by a signal".to_string(),
        }
    }
}

/// Runs commands on one host as its PostgreSQL OS user.
#[async_trait::async_trait]
pub trait Transport: Send + Sync {
    /// The inventory name of the host.
    fn host(&self) -> &str;
    /// How the host is reached, for messages (`ssh postgres@10.0.0.1:22`, `local`).
    fn describe(&self) -> String;
    /// Runs `cmd` to completion, streaming lines to `sink`. An error means the command could
    /// not be run at all (connection lost, no such program); a non-zero exit is an `Output`.
    async fn run(&self, cmd: &Cmd, sink: Option<LineSink>) -> anyhow::Result<Output>;
    /// A local directory holding `.s.PGSQL.<port>` that reaches the host's server socket
    /// (`socket_dir`): the socket itself locally, an SSH-forwarded socket remotely.
    async fn pg_socket_dir(&self, socket_dir: &str, port: u16) -> anyhow::Result<PathBuf>;
    /// Starts a command that keeps running after this returns (a lock holder): its stdin stays
    /// open until the returned [`Spawned`] is dropped, and its stdout is readable line by line.
    async fn spawn(&self, cmd: &Cmd) -> anyhow::Result<Spawned>;
    /// Is the connection still usable (an ssh master can exit when idle or cut)?
    async fn alive(&self) -> bool {
        true
    }
    /// Releases the connection.
    async fn close(&self);
    /// The pid of the local process that keeps this connection open (an ssh master), if any.
    fn master_pid(&self) -> Option<u32> {
        None
    }
}

/// A running command started by [`Transport::spawn`].
pub struct Spawned {
    /// The command's stdin, open until dropped or shut down (its EOF ends a lock holder).
    pub stdin: Option<Box<dyn tokio::io::AsyncWrite + Send + Unpin>>,
    /// The command's stdout, to read line by line.
    pub stdout: tokio::io::BufReader<Box<dyn AsyncRead + Send + Unpin>>,
    /// Resolves to the exit code when the command ends (`None`: killed or connection lost).
    pub exit: std::pin::Pin<Box<dyn std::future::Future<Output = Option<i32>> + Send>>,
    /// Keeps a transport resource (an SSH channel permit) for as long as the command runs.
    pub _guard: Option<Box<dyn std::any::Any + Send + Sync>>,
}

/// Reads stdout and stderr concurrently (a child blocks on a full pipe otherwise), splitting
/// lines on `\n` and `\r`, feeding the sink, keeping stdout and a tail of stderr.
pub(crate) async fn collect<O, E>(
    stdout: Option<O>,
    stderr: Option<E>,
    sink: Option<LineSink>,
) -> (String, Vec<String>)
where
    O: AsyncRead + Unpin,
    E: AsyncRead + Unpin,
{
    let s1 = sink.clone();
    let out = async move {
        // stdout is kept byte for byte (file reads compare it); lines go to the sink.
        let mut all: Vec<u8> = Vec::new();
        if let Some(o) = stdout {
            read_chunks(
                o,
                |chunk| {
                    if all.len() < MAX_STDOUT {
                        all.extend_from_slice(chunk);
                    }
                },
                |l| {
                    if let Some(s) = &s1 {
                        s(Stream::Stdout, l);
                    }
                },
            )
            .await;
        }
        String::from_utf8_lossy(&all).into_owned()
    };
    let err = async move {
        let mut tail = std::collections::VecDeque::new();
        if let Some(e) = stderr {
            read_lines(e, |l| {
                if let Some(s) = &sink {
                    s(Stream::Stderr, l);
                }
                if !l.trim().is_empty() {
                    if tail.len() == STDERR_TAIL {
                        tail.pop_front();
                    }
                    tail.push_back(l.to_string());
                }
            })
            .await;
        }
        tail.into_iter().collect::<Vec<_>>()
    };
    tokio::join!(out, err)
}

async fn read_lines<R: AsyncRead + Unpin>(r: R, on_line: impl FnMut(&str)) {
    read_chunks(r, |_| {}, on_line).await
}

async fn read_chunks<R: AsyncRead + Unpin>(
    mut r: R,
    mut on_chunk: impl FnMut(&[u8]),
    mut on_line: impl FnMut(&str),
) {
    let mut buf = vec![0u8; 8192];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        on_chunk(&buf[..n]);
        for &b in &buf[..n] {
            if b == b'\n' || b == b'\r' {
                if !(pending.is_empty() && b == b'\n') {
                    on_line(&String::from_utf8_lossy(&pending));
                }
                pending.clear();
            } else {
                pending.push(b);
            }
        }
    }
    if !pending.is_empty() {
        on_line(&String::from_utf8_lossy(&pending));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_goes_in_an_env_prefix() {
        let c = Cmd::new("/usr/bin/pg_basebackup")
            .arg("-D")
            .arg("/d")
            .env("PGPASSFILE", "/p");
        assert_eq!(
            c.full_argv(),
            vec!["env", "PGPASSFILE=/p", "/usr/bin/pg_basebackup", "-D", "/d"]
        );
        assert_eq!(c.program(), "pg_basebackup");
        let w = c.until_disconnect();
        assert_eq!(&w.argv[..4], &["sh", "-c", WATCH, "pgrepl-watch"]);
        assert_eq!(
            w.argv[4..],
            ["env", "PGPASSFILE=/p", "/usr/bin/pg_basebackup", "-D", "/d"]
        );
        assert!(w.hold_stdin && w.env.is_empty());
        assert_eq!(w.program(), "pg_basebackup");
    }

    #[test]
    fn logged_argv_hides_env_values_and_the_watch_script() {
        let c = Cmd::new("/usr/bin/pg_basebackup")
            .arg("-D")
            .arg("/d")
            .env("PGPASSFILE", "/secret/path")
            .env("LC_ALL", "C");
        let want = [
            "env",
            "PGPASSFILE=…",
            "LC_ALL=…",
            "/usr/bin/pg_basebackup",
            "-D",
            "/d",
        ];
        assert_eq!(c.logged_argv(), want);
        assert_eq!(c.clone().until_disconnect().logged_argv(), want);
        assert_eq!(
            Cmd::new("pg_ctl").arg("status").logged_argv(),
            ["pg_ctl", "status"]
        );
        let s = Cmd::new("sh")
            .args(["-c", "cat > \"$1\"", "sh", "/f"])
            .stdin(b"secret".to_vec());
        assert_eq!(s.logged_argv(), ["sh", "-c", "…", "sh", "/f"]);
        let adhoc = Cmd::new("sh").args(["-c", "true"]);
        assert_eq!(adhoc.logged_argv(), ["sh", "-c", "true"]);
        assert!(!format!("{:?}", c.until_disconnect().logged_argv()).contains("/secret/path"));
    }

    #[test]
    fn debug_hides_stdin() {
        let c = Cmd::new("sh").stdin(b"*:*:*:rep:canary".to_vec());
        let d = format!("{c:?}");
        assert!(!d.contains("canary"), "{d}");
        assert!(d.contains("16 bytes"), "{d}");
    }

    #[tokio::test]
    async fn splits_on_cr_and_lf() {
        let data: &[u8] = b"a\r\nb\rc\n\nd";
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s2 = seen.clone();
        let sink: LineSink = Arc::new(move |_, l| s2.lock().unwrap().push(l.to_string()));
        let (out, _) = collect(Some(data), None::<&[u8]>, Some(sink)).await;
        assert_eq!(*seen.lock().unwrap(), vec!["a", "b", "c", "d"]);
        assert_eq!(out.as_bytes(), data, "stdout is kept byte for byte");
    }
}
