//! Test hosts for pgrepl's integration suite: real PostgreSQL servers and real OpenSSH servers.
//!
//! As root (as CI runs), each host is a network namespace with its own address on a bridge and
//! its own sshd, so a connection from one host to another arrives from the sender's own address
//! and per-replica pg_hba.conf lines are exercised for real. Not as root, hosts fall back to
//! 127.x addresses on loopback with sshd on a high port, running as the current user; there a
//! connection between hosts arrives from 127.0.0.1, so that mode cannot prove the per-replica
//! pg_hba.conf lines (the inventory adds a 127.0.0.1 replication rule instead).
//!
//! A `Lab` owns everything it starts; dropping it (also when a test fails) stops every server,
//! kills what is left in its namespaces, removes the namespaces, the bridge and its files.

#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The PostgreSQL major the suite runs when the environment names none: Debian 12's own.
const DEFAULT_PG_VERSION: u32 = 15;

/// The server binaries the suite runs: `PGREPL_TEST_PG_BIN`, else Debian's
/// `/usr/lib/postgresql/<PGREPL_TEST_PG_VERSION or 15>/bin` (so a plain `cargo nextest run`
/// runs Debian's 15, as before). CI sets both variables to run the suite on another major
/// (`scripts/install-pg-versions --bin-dir MAJOR` prints where each one is).
pub fn pg_bin() -> String {
    if let Some((b, _)) = TLS_BUILD.with(|o| o.borrow().clone()) {
        return b;
    }
    match std::env::var("PGREPL_TEST_PG_BIN") {
        Ok(b) if !b.is_empty() => b,
        _ => format!("/usr/lib/postgresql/{}/bin", pg_version()),
    }
}

/// The major version of [`pg_bin`]: `PGREPL_TEST_PG_VERSION`, else what its `postgres
/// --version` says when only `PGREPL_TEST_PG_BIN` is set, else 15.
pub fn pg_version() -> u32 {
    if let Some((_, v)) = TLS_BUILD.with(|o| o.borrow().clone()) {
        return v;
    }
    static V: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *V.get_or_init(|| {
        if let Ok(v) = std::env::var("PGREPL_TEST_PG_VERSION") {
            if !v.is_empty() {
                return v.parse().unwrap_or_else(|_| {
                    panic!("PGREPL_TEST_PG_VERSION={v:?} is not a major version")
                });
            }
        }
        match std::env::var("PGREPL_TEST_PG_BIN") {
            Ok(b) if !b.is_empty() => {
                let out = sh(&[&format!("{b}/postgres"), "--version"]);
                out.split(')')
                    .nth(1)
                    .and_then(|r| r.split(['.', 'b', 'r']).next())
                    .and_then(|m| m.trim().parse().ok())
                    .unwrap_or_else(|| panic!("cannot read the major version from {out:?}"))
            }
            _ => DEFAULT_PG_VERSION,
        }
    })
}

thread_local! {
    /// Set by [`use_tls_build`] on the calling test's thread: (bin dir, major).
    static TLS_BUILD: std::cell::RefCell<Option<(String, u32)>> = const { std::cell::RefCell::new(None) };
}

/// Whether the server binaries in `bin` are built with SSL: a server built without refuses
/// `ssl = on` ("SSL is not supported by this build"); nothing is started.
pub fn has_ssl(bin: &str) -> bool {
    let postgres = format!("{bin}/postgres");
    let argv = [
        postgres.as_str(),
        "-D",
        "/nonexistent/pgrepl-ssl-check",
        "-C",
        "port",
        "-c",
        "ssl=on",
    ];
    let user = if is_root() {
        "postgres".to_string()
    } else {
        current_user()
    };
    let v = as_os_user(&user, &argv);
    let out = Command::new(v[0])
        .args(&v[1..])
        .current_dir("/")
        .env("LC_ALL", "C")
        .output()
        .expect("run postgres -C");
    !String::from_utf8_lossy(&out.stderr).contains("SSL is not supported")
}

/// Whether the build under test ([`pg_bin`]) has SSL (cached).
pub fn pg_has_ssl() -> bool {
    static S: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *S.get_or_init(|| has_ssl(&pg_bin()))
}

/// The `tls:` line every lab inventory gets: none (TLS on, pgrepl's default) when the build
/// under test has SSL; `tls: off` when it has not (the PyPI builds of 13, 14, 16 and 18 are
/// built without OpenSSL), since pgrepl refuses TLS on such a build.
pub fn tls_line() -> &'static str {
    if let Some((b, _)) = TLS_BUILD.with(|o| o.borrow().clone()) {
        return if has_ssl(&b) { "" } else { "tls: off\n" };
    }
    if pg_has_ssl() {
        ""
    } else {
        "tls: off\n"
    }
}

/// For the TLS tests: on this thread, the build under test when it has SSL, else Debian's 15
/// (installed by the test command), so they run in every pass of the suite. Returns the major.
pub fn use_tls_build() -> u32 {
    if pg_has_ssl() {
        return pg_version();
    }
    let b = format!("/usr/lib/postgresql/{DEFAULT_PG_VERSION}/bin");
    assert!(
        has_ssl(&b),
        "{b} is not built with SSL: the TLS tests need a build that is"
    );
    TLS_BUILD.with(|o| *o.borrow_mut() = Some((b, DEFAULT_PG_VERSION)));
    DEFAULT_PG_VERSION
}

/// On this thread, the server binaries in `bin` (major `major`) instead of the build under test.
pub fn use_build(bin: &str, major: u32) {
    TLS_BUILD.with(|o| *o.borrow_mut() = Some((bin.to_string(), major)));
}

/// The path of one PostgreSQL program in [`pg_bin`] (`pg_tool("psql")`).
pub fn pg_tool(name: &str) -> String {
    format!("{}/{name}", pg_bin())
}
const SLOT_DIR: &str = "/tmp/pgrepl-test-slots";

pub fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

fn current_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| {
            String::from_utf8_lossy(&Command::new("id").arg("-un").output().unwrap().stdout)
                .trim()
                .to_string()
        })
}

/// Runs a command, panicking with its output when it fails.
pub fn sh(argv: &[&str]) -> String {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    assert!(
        out.status.success(),
        "{argv:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sh_quiet(argv: &[&str]) -> bool {
    Command::new(argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// A passphrase-less ed25519 key pair at `path` (and `path`.pub).
fn keygen(path: &str) {
    sh(&["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path]);
}

/// How hosts are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Netns,
    Loopback,
}

/// One test host.
#[derive(Debug, Clone)]
pub struct TestHost {
    pub name: String,
    pub address: String,
    pub netns: Option<String>,
    pub ssh_port: u16,
    pub pg_port: u16,
    /// Owned by the OS user, 0700: holds data/, run/ and pgrepl's sibling files.
    pub home: PathBuf,
    pub data_dir: PathBuf,
    pub socket_dir: PathBuf,
}

/// A set of test hosts with sshd running on each.
pub struct Lab {
    pub mode: Mode,
    pub id: u32,
    pub dir: PathBuf,
    pub os_user: String,
    pub hosts: Vec<TestHost>,
    pub client_key: PathBuf,
    pub known_hosts: PathBuf,
    pub password_file: PathBuf,
    pub password: String,
    sshds: Vec<Child>,
    bridge: Option<String>,
    slot_file: PathBuf,
}

/// Claims a free lab number (1..=200) with an exclusive lock file holding our pid; a file
/// left by a dead process is reclaimed, with the namespaces and bridge that run left behind.
fn claim_slot() -> (u32, PathBuf) {
    fs::create_dir_all(SLOT_DIR).unwrap();
    let _ = fs::set_permissions(SLOT_DIR, fs::Permissions::from_mode(0o1777));
    let me = std::process::id();
    for n in 1..=200u32 {
        let p = Path::new(SLOT_DIR).join(n.to_string());
        match fs::OpenOptions::new().write(true).create_new(true).open(&p) {
            Ok(mut f) => {
                writeln!(f, "{me}").unwrap();
                return (n, p);
            }
            Err(_) => {
                let pid: Option<i32> = fs::read_to_string(&p)
                    .ok()
                    .and_then(|s| s.trim().parse().ok());
                // A file without a pid yet is being claimed right now (unless it is old).
                let young = fs::metadata(&p)
                    .and_then(|m| m.modified())
                    .map(|t| t.elapsed().unwrap_or_default() < Duration::from_secs(10))
                    .unwrap_or(true);
                let alive = match pid {
                    Some(pid) => {
                        (unsafe { libc::kill(pid, 0) }) == 0
                            || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
                    }
                    None => young,
                };
                if !alive && fs::remove_file(&p).is_ok() {
                    sweep_stale(n);
                    if let Ok(mut f) = fs::OpenOptions::new().write(true).create_new(true).open(&p)
                    {
                        writeln!(f, "{me}").unwrap();
                        return (n, p);
                    }
                }
            }
        }
    }
    panic!("no free test lab slot in {SLOT_DIR}");
}

/// Removes namespaces and the bridge of lab `n` left by a test process that died.
fn sweep_stale(n: u32) {
    if !is_root() {
        return;
    }
    for k in 0..16 {
        sh_quiet(&["ip", "link", "del", &format!("pgt{n}v{k}")]);
        let ns = format!("pgt{n}h{k}");
        if Path::new("/run/netns").join(&ns).exists() {
            kill_netns_pids(&ns);
            sh_quiet(&["ip", "netns", "del", &ns]);
        }
    }
    sh_quiet(&["ip", "link", "del", &format!("pgtb{n}")]);
}

fn kill_netns_pids(ns: &str) {
    if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            if let Ok(pid) = pid.parse::<i32>() {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

impl Lab {
    /// Makes hosts named `names`, each with a running sshd; PostgreSQL is not started.
    pub fn new(names: &[&str]) -> Lab {
        let mode = if is_root() && std::env::var_os("PGREPL_TEST_LOOPBACK").is_none() {
            Mode::Netns
        } else {
            Mode::Loopback
        };
        let (id, slot_file) = claim_slot();
        let os_user = if is_root() {
            "postgres".to_string()
        } else {
            current_user()
        };
        let dir = PathBuf::from(format!("/tmp/pgrepl-it-{id}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let password = format!("canary-{:016x}", rand::random::<u64>());
        let password_file = dir.join("replication.password");
        fs::write(&password_file, format!("{password}\n")).unwrap();
        fs::set_permissions(&password_file, fs::Permissions::from_mode(0o600)).unwrap();
        let mut lab = Lab {
            mode,
            id,
            dir: dir.clone(),
            os_user,
            hosts: Vec::new(),
            client_key: dir.join("client_key"),
            known_hosts: dir.join("known_hosts"),
            password_file,
            password,
            sshds: Vec::new(),
            bridge: None,
            slot_file,
        };
        keygen(lab.client_key.to_str().unwrap());
        let authorized = dir.join("authorized_keys");
        fs::copy(dir.join("client_key.pub"), &authorized).unwrap();
        fs::set_permissions(&authorized, fs::Permissions::from_mode(0o644)).unwrap();
        if mode == Mode::Netns {
            let br = format!("pgtb{id}");
            sh_quiet(&["ip", "link", "del", &br]);
            sh(&["ip", "link", "add", &br, "type", "bridge"]);
            lab.bridge = Some(br.clone());
            sh(&[
                "ip",
                "addr",
                "add",
                &format!("198.18.{id}.1/24"),
                "dev",
                &br,
            ]);
            sh(&["ip", "link", "set", &br, "up"]);
        }
        let mut known = String::new();
        for (k, name) in names.iter().enumerate() {
            let h = lab.make_host(k as u32, name, &authorized);
            let key = fs::read_to_string(dir.join(format!("ssh-{name}/host_key.pub"))).unwrap();
            let key = key.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
            if h.ssh_port == 22 {
                known.push_str(&format!("{} {key}\n", h.address));
            } else {
                known.push_str(&format!("[{}]:{} {key}\n", h.address, h.ssh_port));
            }
            lab.hosts.push(h);
        }
        fs::write(&lab.known_hosts, known).unwrap();
        for h in &lab.hosts {
            wait_tcp(&h.address, h.ssh_port, Duration::from_secs(20));
        }
        lab
    }

    fn make_host(&mut self, k: u32, name: &str, authorized: &Path) -> TestHost {
        let (address, netns, ssh_port) = match self.mode {
            Mode::Netns => {
                let ns = format!("pgt{}h{k}", self.id);
                let veth = format!("pgt{}v{k}", self.id);
                let addr = format!("198.18.{}.{}", self.id, 10 + k);
                sh_quiet(&["ip", "netns", "del", &ns]);
                sh_quiet(&["ip", "link", "del", &veth]);
                sh(&["ip", "netns", "add", &ns]);
                sh(&[
                    "ip", "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns",
                    &ns,
                ]);
                sh(&[
                    "ip",
                    "link",
                    "set",
                    &veth,
                    "master",
                    self.bridge.as_deref().unwrap(),
                    "up",
                ]);
                sh(&[
                    "ip",
                    "netns",
                    "exec",
                    &ns,
                    "ip",
                    "addr",
                    "add",
                    &format!("{addr}/24"),
                    "dev",
                    "eth0",
                ]);
                sh(&[
                    "ip", "netns", "exec", &ns, "ip", "link", "set", "eth0", "up",
                ]);
                sh(&["ip", "netns", "exec", &ns, "ip", "link", "set", "lo", "up"]);
                (addr, Some(ns), 22)
            }
            Mode::Loopback => (format!("127.{}.0.{}", 100 + self.id, 10 + k), None, 2222),
        };
        let home = self.dir.join(name);
        let data_dir = home.join("data");
        let socket_dir = home.join("run");
        fs::create_dir_all(&socket_dir).unwrap();
        if is_root() {
            sh(&[
                "chown",
                "-R",
                &format!("{}:", self.os_user),
                home.to_str().unwrap(),
            ]);
        }
        fs::set_permissions(&home, fs::Permissions::from_mode(0o700)).unwrap();

        // sshd: its own host key, config and log.
        let sdir = self.dir.join(format!("ssh-{name}"));
        fs::create_dir_all(&sdir).unwrap();
        let host_key = sdir.join("host_key");
        keygen(host_key.to_str().unwrap());
        let cfg = sdir.join("sshd_config");
        fs::write(
            &cfg,
            format!(
                "Port {ssh_port}\nListenAddress {address}\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\n\
                 UsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PubkeyAuthentication yes\nAllowUsers {}\nMaxSessions 50\nMaxStartups 100:30:200\n\
                 AllowStreamLocalForwarding yes\nAllowTcpForwarding yes\nLogLevel VERBOSE\n",
                host_key.display(),
                sdir.join("sshd.pid").display(),
                authorized.display(),
                self.os_user
            ),
        )
        .unwrap();
        let log = fs::File::create(sdir.join("sshd.log")).unwrap();
        let mut cmd = match &netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "/usr/sbin/sshd"]);
                c
            }
            None => Command::new("/usr/sbin/sshd"),
        };
        cmd.args(["-D", "-e", "-f", cfg.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = cmd
            .spawn()
            .expect("start sshd (is openssh-server installed? scripts/install-test-deps)");
        self.sshds.push(child);
        TestHost {
            name: name.to_string(),
            address,
            netns,
            ssh_port,
            pg_port: 5432,
            home,
            data_dir,
            socket_dir,
        }
    }

    pub fn host(&self, name: &str) -> &TestHost {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no test host {name}"))
    }

    /// Writes an inventory for these hosts over SSH. `roles`: (name, role, upstream).
    /// `extra_postgres` is YAML added under `postgres:`; `fsync` off makes tests faster.
    pub fn ssh_inventory(
        &self,
        roles: &[(&str, &str, Option<&str>)],
        extra_postgres: &str,
    ) -> PathBuf {
        self.ssh_inventory_with(roles, extra_postgres, false)
    }

    /// Like [`Lab::ssh_inventory`]; `durable` keeps PostgreSQL's default fsync=on (benchmarks).
    pub fn ssh_inventory_with(
        &self,
        roles: &[(&str, &str, Option<&str>)],
        extra_postgres: &str,
        durable: bool,
    ) -> PathBuf {
        self.ssh_inventory_full(roles, extra_postgres, durable, &[])
    }

    /// The address connections from the test runner arrive from (for pg_hba rules).
    pub fn runner_address(&self) -> String {
        match self.mode {
            Mode::Netns => format!("198.18.{}.1", self.id),
            Mode::Loopback => "127.0.0.1".into(),
        }
    }

    /// Like [`Lab::ssh_inventory_with`], with extra pg_hba rules (YAML flow mappings).
    pub fn ssh_inventory_full(
        &self,
        roles: &[(&str, &str, Option<&str>)],
        extra_postgres: &str,
        durable: bool,
        extra_hba: &[String],
    ) -> PathBuf {
        let fsync = if durable { "" } else { "    fsync: 'off'\n" };
        let mut y = format!(
            "cluster: it{id}\npostgres:\n  version: {v}\n  bin_dir: {b}\n  os_user: {u}\n  data_dir: {d}/{{host}}/data\n  socket_dir: {d}/{{host}}/run\n  settings:\n    shared_buffers: 16MB\n    max_wal_size: 128MB\n{fsync}{extra_postgres}",
            id = self.id,
            v = pg_version(),
            b = pg_bin(),
            u = self.os_user,
            d = self.dir.display()
        );
        let mut hba: Vec<String> = extra_hba.to_vec();
        if self.mode == Mode::Loopback {
            hba.push("{type: host, database: replication, user: replicator, address: 127.0.0.1/32, method: scram-sha-256}".into());
        }
        if !hba.is_empty() {
            y.push_str("  hba:\n");
            for r in &hba {
                y.push_str(&format!("    - {r}\n"));
            }
        }
        y.push_str(tls_line());
        y.push_str(&format!(
            "replication:\n  user: replicator\n  password_file: {}\naccess:\n  transport: ssh\n  ssh:\n    user: {}\n    port: {}\n    identity_file: {}\n    known_hosts_file: {}\n    host_keys: strict\ntimeouts:\n  connect: 10\n  streaming: 60\nhosts:\n",
            self.password_file.display(),
            self.os_user,
            self.hosts[0].ssh_port,
            self.client_key.display(),
            self.known_hosts.display()
        ));
        for (name, role, upstream) in roles {
            let h = self.host(name);
            y.push_str(&format!(
                "  - name: {name}\n    address: {}\n    role: {role}\n",
                h.address
            ));
            if let Some(u) = upstream {
                y.push_str(&format!("    upstream: {u}\n"));
            }
        }
        let p = self.dir.join("inventory.yml");
        fs::write(&p, y).unwrap();
        p
    }

    /// Runs `argv` on a test host (inside its namespace) as the OS user; returns stdout.
    pub fn run_on(&self, host: &str, argv: &[&str]) -> String {
        let h = self.host(host);
        let mut v: Vec<&str> = Vec::new();
        if let Some(ns) = &h.netns {
            v.extend(["ip", "netns", "exec", ns.as_str()]);
        }
        v.extend(as_os_user(&self.os_user, argv));
        sh(&v)
    }

    /// Like [`Lab::run_on`], without panicking: stdout, or stderr when it failed.
    pub fn try_run_on(&self, host: &str, argv: &[&str]) -> Result<String, String> {
        let h = self.host(host);
        let mut v: Vec<&str> = Vec::new();
        if let Some(ns) = &h.netns {
            v.extend(["ip", "netns", "exec", ns.as_str()]);
        }
        v.extend(as_os_user(&self.os_user, argv));
        let out = Command::new(v[0])
            .args(&v[1..])
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{v:?}: {e}"));
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Starts a host's server again (after a test stopped it).
    pub fn start_server(&self, host: &str) {
        let h = self.host(host);
        let ctl = pg_tool("pg_ctl");
        let log = format!("{}.log", h.data_dir.display());
        self.run_on(
            host,
            &[
                &ctl,
                "start",
                "-D",
                h.data_dir.to_str().unwrap(),
                "-l",
                &log,
                "-w",
                "-t",
                "60",
            ],
        );
    }

    /// Stops a host's server (fast mode).
    pub fn stop_server(&self, host: &str) {
        let h = self.host(host);
        let ctl = pg_tool("pg_ctl");
        self.run_on(
            host,
            &[
                &ctl,
                "stop",
                "-D",
                h.data_dir.to_str().unwrap(),
                "-m",
                "fast",
                "-w",
                "-t",
                "60",
            ],
        );
    }

    /// The postmaster's pid of a host.
    pub fn postmaster_pid(&self, host: &str) -> i32 {
        let pidfile = self.host(host).data_dir.join("postmaster.pid");
        fs::read_to_string(&pidfile)
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// Each host's postmaster start time, recovery state and checkpoint timeline: equal before
    /// and after means nothing was restarted, promoted or switched.
    pub fn snapshot(&self, hosts: &[&str]) -> Vec<String> {
        hosts
            .iter()
            .map(|h| self.psql(h, "SELECT pg_postmaster_start_time()::text || ' ' || pg_is_in_recovery()::text || ' ' || (SELECT timeline_id FROM pg_control_checkpoint())"))
            .collect()
    }

    /// Every host's [`Lab::snapshot`].
    pub fn snapshot_all(&self) -> Vec<String> {
        let names: Vec<&str> = self.hosts.iter().map(|h| h.name.as_str()).collect();
        self.snapshot(&names)
    }

    /// Freezes a standby's walreceiver (SIGSTOP) so it falls behind; thawed when dropped.
    pub fn freeze_walreceiver(&self, host: &str) -> Frozen {
        let pid = self
            .psql(host, "SELECT pid FROM pg_stat_wal_receiver")
            .parse::<i32>()
            .expect("a running walreceiver");
        Frozen::new(pid)
    }

    /// SIGKILL to a host's postmaster, then waits (30 s at most) until `pg_ctl status` says
    /// it is gone: a crash.
    pub fn kill9_postmaster(&self, host: &str) {
        let pid = self.postmaster_pid(host);
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
        wait_for(
            &format!("{host} gone after SIGKILL"),
            Duration::from_secs(30),
            || !self.server_running(host),
        );
    }

    /// The pid of a host's sshd.
    pub fn sshd_pid(&self, host: &str) -> i32 {
        let k = self
            .hosts
            .iter()
            .position(|h| h.name == host)
            .expect("host");
        self.sshds[k].id() as i32
    }

    /// Is a host's server running (`pg_ctl status`)?
    pub fn server_running(&self, host: &str) -> bool {
        let h = self.host(host);
        let ctl = pg_tool("pg_ctl");
        let mut v: Vec<&str> = Vec::new();
        if let Some(ns) = &h.netns {
            v.extend(["ip", "netns", "exec", ns.as_str()]);
        }
        v.extend(as_os_user(
            &self.os_user,
            &[&ctl, "status", "-D", h.data_dir.to_str().unwrap()],
        ));
        sh_quiet(&v)
    }

    /// Polls (bounded) until every host in `replicas` has replayed `from`'s current WAL position.
    pub fn wait_replayed(&self, from: &str, replicas: &[&str]) {
        let lsn = self.psql(from, "SELECT pg_current_wal_lsn()");
        for r in replicas {
            let start = Instant::now();
            while self.psql(r, &format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'")) != "t" {
                assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "{r} did not replay {lsn} within 60s"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Writes an SSH inventory for `roles` and runs `pgrepl init` on it; returns the inventory path.
    pub fn init(&self, roles: &[(&str, &str, Option<&str>)]) -> String {
        self.init_with(roles, false)
    }

    /// Like [`Lab::init`]; `durable` keeps fsync on (benchmarks).
    pub fn init_with(&self, roles: &[(&str, &str, Option<&str>)], durable: bool) -> String {
        let inv = self.ssh_inventory_with(roles, "", durable);
        let inv = inv.to_str().unwrap().to_string();
        self.pgrepl(&["-i", &inv, "init"]).expect_code(0);
        inv
    }

    /// Runs pgrepl with `args`, no terminal and no stdin, bounded by a deadline.
    pub fn pgrepl(&self, args: &[&str]) -> Run {
        pgrepl(args, &[])
    }

    /// Runs SQL on a host's server as the superuser through its socket; returns `-At` output.
    pub fn psql(&self, host: &str, sql: &str) -> String {
        self.psql_db(host, "postgres", sql)
    }

    /// Like [`Lab::psql`], in database `db`.
    pub fn psql_db(&self, host: &str, db: &str, sql: &str) -> String {
        let h = self.host(host);
        psql_at_db(&self.os_user, &h.socket_dir, h.pg_port, db, sql)
    }
}

/// `argv` run as `os_user` (through runuser when the tests run as root).
fn as_os_user<'a>(os_user: &'a str, argv: &[&'a str]) -> Vec<&'a str> {
    let mut v: Vec<&str> = Vec::new();
    if is_root() {
        v.extend(["runuser", "-u", os_user, "--"]);
    }
    v.extend_from_slice(argv);
    v
}

/// Runs SQL as `os_user` through a socket directory.
pub fn psql_at(os_user: &str, socket_dir: &Path, port: u16, sql: &str) -> String {
    psql_at_db(os_user, socket_dir, port, "postgres", sql)
}

/// Like [`psql_at`], in database `db`.
pub fn psql_at_db(os_user: &str, socket_dir: &Path, port: u16, db: &str, sql: &str) -> String {
    let port = port.to_string();
    let psql = pg_tool("psql");
    let argv = as_os_user(
        os_user,
        &[
            psql.as_str(),
            "-X",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            socket_dir.to_str().unwrap(),
            "-p",
            &port,
            "-d",
            db,
            "-c",
            sql,
        ],
    );
    sh(&argv).trim().to_string()
}

/// A process frozen with SIGSTOP; thawed with SIGCONT when dropped (also when a test fails).
pub struct Frozen(pub i32);

impl Frozen {
    pub fn new(pid: i32) -> Frozen {
        assert_eq!(
            unsafe { libc::kill(pid, libc::SIGSTOP) },
            0,
            "SIGSTOP {pid}"
        );
        Frozen(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

/// `schemas/<name>.schema.json`: the schema of one command's document (generated, see
/// `src/schemas.rs`).
pub fn schema(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(format!("{name}.schema.json"))
}

/// Validates a JSON document against a schema with a real validator (python3-jsonschema).
pub fn validate_json(doc: &str, schema: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("doc.json");
    fs::write(&f, doc).unwrap();
    let out = Command::new("/usr/bin/python3")
        .args(["-c", "import json,sys,jsonschema; jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))", f.to_str().unwrap(), schema.to_str().unwrap()])
        .output()
        .expect("python3 with jsonschema (scripts/install-test-deps installs python3-jsonschema)");
    assert!(
        out.status.success(),
        "JSON does not validate against {}:\n{}\n{doc}",
        schema.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Checks Prometheus text with the real linter (promtool, from the prometheus package).
pub fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (scripts/install-test-deps installs prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The result of one pgrepl run.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "pgrepl exited {} (expected {code})\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

/// Runs the pgrepl binary with extra environment; no stdin, no terminal; killed after 5 min.
pub fn pgrepl(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pgrepl"));
    c.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c.env_remove("PGREPL_YES").env_remove("PGREPL_INVENTORY");
    for (k, v) in env {
        c.env(k, v);
    }
    let child = c.spawn().expect("run pgrepl");
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out: Output = match rx.recv_timeout(Duration::from_secs(300)) {
        Ok(r) => r.unwrap(),
        Err(_) => {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("pgrepl {args:?} did not finish within 300s");
        }
    };
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn wait_tcp(addr: &str, port: u16, within: Duration) {
    let sa: SocketAddr = format!("{addr}:{port}").parse().unwrap();
    let start = Instant::now();
    while start.elapsed() < within {
        if TcpStream::connect_timeout(&sa, Duration::from_millis(200)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{addr}:{port} did not accept connections within {within:?}");
}

/// Stops a PostgreSQL server in `data_dir` if one runs there (immediate mode), and kills its
/// postmaster by the pid in postmaster.pid if pg_ctl could not.
pub fn stop_server(os_user: &str, data_dir: &Path) {
    let pidfile = data_dir.join("postmaster.pid");
    if !pidfile.exists() {
        return;
    }
    let ctl = pg_tool("pg_ctl");
    let argv = as_os_user(
        os_user,
        &[
            ctl.as_str(),
            "stop",
            "-D",
            data_dir.to_str().unwrap(),
            "-m",
            "immediate",
            "-w",
            "-t",
            "20",
        ],
    );
    if !sh_quiet(&argv) {
        if let Some(pid) = fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<i32>().ok()))
        {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // A test may have frozen a postmaster; a stopped process cannot shut down.
        for h in &self.hosts {
            if let Some(pid) = fs::read_to_string(h.data_dir.join("postmaster.pid"))
                .ok()
                .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<i32>().ok()))
            {
                unsafe { libc::kill(pid, libc::SIGCONT) };
            }
        }
        for h in &self.hosts {
            stop_server(&self.os_user, &h.data_dir);
        }
        for c in &mut self.sshds {
            let _ = c.kill();
            let _ = c.wait();
        }
        for (k, h) in self.hosts.iter().enumerate() {
            if let Some(ns) = &h.netns {
                kill_netns_pids(ns);
                // Deleting our end of the veth pair removes both ends at once, even while the
                // namespace lingers until its killed processes have exited.
                sh_quiet(&["ip", "link", "del", &format!("pgt{}v{k}", self.id)]);
                sh_quiet(&["ip", "netns", "del", ns]);
            }
        }
        if let Some(br) = &self.bridge {
            sh_quiet(&["ip", "link", "del", br]);
        }
        if std::env::var_os("PGREPL_TEST_KEEP").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        }
        let _ = fs::remove_file(&self.slot_file);
    }
}

/// A cluster of `n` servers on this machine through the local transport (127.0.0.1, one port
/// each), in a private directory; stops every server it started when dropped.
pub struct LocalLab {
    pub dir: tempfile::TempDir,
    pub os_user: String,
    pub names: Vec<String>,
    pub ports: Vec<u16>,
}

impl LocalLab {
    /// Names are `a`, `b`, `c`… (the first is the primary). Nothing is started yet.
    pub fn new(n: usize) -> LocalLab {
        let os_user = if is_root() {
            "postgres".to_string()
        } else {
            current_user()
        };
        let dir = tempfile::Builder::new()
            .prefix("pgrepl-local-")
            .tempdir()
            .unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(dir.path().join("pw"), "canary-local-pw\n").unwrap();
        fs::set_permissions(dir.path().join("pw"), fs::Permissions::from_mode(0o600)).unwrap();
        if is_root() {
            sh(&[
                "chown",
                &format!("{os_user}:"),
                dir.path().to_str().unwrap(),
            ]);
        }
        let listeners: Vec<std::net::TcpListener> = (0..n)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let ports = listeners
            .iter()
            .map(|l| l.local_addr().unwrap().port())
            .collect();
        let names = (0..n)
            .map(|i| ((b'a' + i as u8) as char).to_string())
            .collect();
        LocalLab {
            dir,
            os_user,
            names,
            ports,
        }
    }

    /// Writes the inventory (with `shared_buffers`) and returns its path.
    pub fn inventory(&self, shared_buffers: &str) -> PathBuf {
        self.inventory_with(shared_buffers, "", "127.0.0.1")
    }

    /// Like [`LocalLab::inventory`], with `extra_settings` (YAML lines indented by four spaces)
    /// under `postgres.settings` and every host at `address`.
    pub fn inventory_with(
        &self,
        shared_buffers: &str,
        extra_settings: &str,
        address: &str,
    ) -> PathBuf {
        let d = self.dir.path().display();
        let mut y = format!(
            "cluster: lt\npostgres:\n  version: {v}\n  bin_dir: {b}\n  os_user: {u}\n  data_dir: {d}/{{host}}\n  socket_dir: {d}/run\n  settings:\n    shared_buffers: {shared_buffers}\n    fsync: 'off'\n{extra_settings}replication:\n  password_file: {d}/pw\naccess:\n  transport: local\nhosts:\n",
            v = pg_version(),
            b = pg_bin(),
            u = self.os_user
        );
        for (i, (n, p)) in self.names.iter().zip(&self.ports).enumerate() {
            y.push_str(&format!(
                "  - {{name: {n}, address: {address}, port: {p}, role: {}}}\n",
                if i == 0 { "primary" } else { "replica" }
            ));
        }
        y.push_str(tls_line());
        let inv = self.dir.path().join("local.yml");
        fs::write(&inv, y).unwrap();
        inv
    }

    /// SQL on server `i` as the superuser.
    pub fn psql(&self, i: usize, sql: &str) -> String {
        psql_at(
            &self.os_user,
            &self.dir.path().join("run"),
            self.ports[i],
            sql,
        )
    }

    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(&self.names[i])
    }
}

impl Drop for LocalLab {
    fn drop(&mut self) {
        for i in 0..self.names.len() {
            stop_server(&self.os_user, &self.data_dir(i));
        }
    }
}

/// A pgrepl run in the background (no terminal, no stdin); killed when dropped.
pub struct Bg {
    pub child: Child,
    pub started: Instant,
    out: tempfile::NamedTempFile,
    err: tempfile::NamedTempFile,
}

impl Bg {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
    pub fn signal(&self, sig: i32) {
        unsafe { libc::kill(self.pid(), sig) };
    }
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
    /// What it printed on stderr so far.
    pub fn stderr_so_far(&self) -> String {
        fs::read_to_string(self.err.path()).unwrap_or_default()
    }
    /// Waits (bounded: 300 s) and returns what it printed.
    pub fn wait(mut self) -> Run {
        let start = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(300),
                "pgrepl did not finish"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        use std::os::unix::process::ExitStatusExt;
        Run {
            code: status.code().unwrap_or(128 + status.signal().unwrap_or(0)),
            stdout: fs::read_to_string(self.out.path()).unwrap_or_default(),
            stderr: fs::read_to_string(self.err.path()).unwrap_or_default(),
        }
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Starts pgrepl in the background.
pub fn spawn_pgrepl(args: &[&str]) -> Bg {
    let out = tempfile::NamedTempFile::new().unwrap();
    let err = tempfile::NamedTempFile::new().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_pgrepl"))
        .args(args)
        .env_remove("PGREPL_YES")
        .env_remove("PGREPL_INVENTORY")
        .stdin(Stdio::null())
        .stdout(out.reopen().unwrap())
        .stderr(err.reopen().unwrap())
        .spawn()
        .expect("run pgrepl");
    Bg {
        child,
        started: Instant::now(),
        out,
        err,
    }
}

/// The path of `inventories/example.yml` (for tests that contact no host).
pub fn example_inventory() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("inventories/example.yml")
        .display()
        .to_string()
}

/// The findings of a `status --format json` document but its notices (`tls_off`, which every
/// status reports on a build without SSL: see tests/tls.rs).
pub fn findings_beyond_notice(v: &serde_json::Value) -> Vec<&serde_json::Value> {
    v["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["severity"] != "notice")
        .collect()
}

/// The JSON document a command printed on stdout (skipping any line before its first `{`).
pub fn json_doc(out: &str) -> serde_json::Value {
    serde_json::from_str(
        out.lines()
            .skip_while(|l| !l.starts_with('{'))
            .collect::<Vec<_>>()
            .join("\n")
            .as_str(),
    )
    .unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Polls `cond` every 20 ms until it holds; panics naming `what` after `within`.
#[track_caller]
pub fn wait_for(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < within,
            "gave up waiting for {what} after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every process's (pid, argv) on this machine (all test hosts share its process table).
pub fn processes() -> Vec<(i32, Vec<String>)> {
    let mut v = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(raw) = fs::read(e.path().join("cmdline")) {
            let argv = raw
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            v.push((pid, argv));
        }
    }
    v
}

/// The descendants of `pid` (children, grandchildren, ...).
pub fn descendants(pid: i32) -> Vec<i32> {
    let mut parent = std::collections::BTreeMap::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if let Ok(stat) = fs::read_to_string(e.path().join("stat")) {
            if let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) {
                if let Some(pp) = rest
                    .split_whitespace()
                    .nth(1)
                    .and_then(|x| x.parse::<i32>().ok())
                {
                    parent.insert(p, pp);
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![pid];
    while let Some(x) = frontier.pop() {
        for (c, pp) in &parent {
            if *pp == x {
                out.push(*c);
                frontier.push(*c);
            }
        }
    }
    out
}

impl Lab {
    /// Appends a `routers:` section (YAML list items, already indented by two spaces) to the
    /// inventory at `inv`: routers run on a lab host started without PostgreSQL.
    pub fn add_routers(&self, inv: &Path, items: &str) {
        self.add_app(inv);
        let mut y = fs::read_to_string(inv).unwrap();
        y.push_str("routers:\n");
        y.push_str(items);
        fs::write(inv, y).unwrap();
    }

    /// Appends an application role `app` (the lab's password file) and its database `app`.
    pub fn add_app(&self, inv: &Path) {
        let mut y = fs::read_to_string(inv).unwrap();
        y.push_str(&format!(
            "roles:\n  - {{name: app, password_file: {}}}\ndatabases:\n  - name: app\n",
            self.password_file.display()
        ));
        fs::write(inv, y).unwrap();
    }

    /// Runs `sql` through `address:port` as the application role `app` into database `app`
    /// (declared with [`Lab::add_app`], the lab's password): `-At` output, or the error text.
    pub fn psql_tcp(&self, address: &str, port: u16, sql: &str) -> Result<String, String> {
        self.psql_tcp_as(address, port, "app", &self.password, "app", sql)
    }

    /// `sql` through `address:port` as `user` with `password` into `db` (psql over TCP from
    /// the test runner): `-At` output, or the error text.
    pub fn psql_tcp_as(
        &self,
        address: &str,
        port: u16,
        user: &str,
        password: &str,
        db: &str,
        sql: &str,
    ) -> Result<String, String> {
        let out = Command::new(pg_tool("psql"))
            .args([
                "-X",
                "-At",
                "-h",
                address,
                "-p",
                &port.to_string(),
                "-U",
                user,
                "-d",
                db,
                "-c",
                sql,
            ])
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "5")
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).to_string())
        }
    }
}
