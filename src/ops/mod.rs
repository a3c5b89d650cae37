//! Operations, one file per subcommand. Each takes the shared `Context` and returns an exit
//! code or an error; none of them prints except through `Ui`, and none sees clap.
//!
//! This module holds what several operations share: connecting to hosts, running a step with
//! a useful error, reaching a host's server, and converging a host's files and server.

pub mod check;
pub mod init;
pub mod locking;
pub mod operation;
pub mod promote;
pub mod rebuild;
pub mod render;
pub mod status;
pub mod switchover;
pub mod unlock;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;

use crate::db::{self, Db};
use crate::error::Error;
use crate::inventory::{self, Host, Inventory, TransportKind};
use crate::pg::{self, ctl, datadir};
use crate::render::{Rendered, Renderer};
use crate::transport::{local::LocalTransport, ssh, Cmd, LineSink, Output, Transport};
use crate::ui::Ui;

/// What every operation works with.
pub struct Context<'a> {
    pub inv: Inventory,
    pub ui: &'a Ui,
    pub renderer: Renderer,
    pub accept_new_host_keys: bool,
    /// Private (0700) per-run directory: ssh control sockets and forwarded server sockets.
    run_dir: tempfile::TempDir,
    /// Connections kept for the rest of the run (`status --wait` and `--watch` poll many times).
    kept: tokio::sync::Mutex<BTreeMap<String, Arc<dyn Transport>>>,
    /// The cluster lock, while this run holds it.
    locks: tokio::sync::Mutex<Vec<locking::HeldLock>>,
    /// Slots this run created for replicas that are not cloned yet: dropped if the run fails
    /// or is interrupted, so the upstream keeps no stray slot (host, slot).
    pending_slots: std::sync::Mutex<Vec<(String, String)>>,
}

/// Settings of a run that come from the command line (as plain values, not clap types).
pub struct RunOptions<'p> {
    pub inventory: Option<&'p Path>,
    pub templates: Option<&'p Path>,
    pub accept_new_host_keys: bool,
}

impl<'a> Context<'a> {
    /// Loads and validates the inventory (nothing is contacted) and prepares a run.
    pub fn new(opts: RunOptions<'_>, ui: &'a Ui) -> anyhow::Result<Context<'a>> {
        let Some(path) = opts.inventory else {
            return Err(Error::Inventory {
                file: "(none)".into(),
                issues: vec![crate::error::InventoryIssue {
                    line: 0,
                    column: 0,
                    message: "no inventory given".into(),
                    hint: "pass -i <file> or set PGREPL_INVENTORY (see inventories/example.yml)"
                        .into(),
                }],
            }
            .into());
        };
        let inv = inventory::load(path)?;
        let renderer = Renderer::new(opts.templates)?;
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .map(std::path::PathBuf::from)
            .filter(|p| p.is_dir())
            .unwrap_or_else(std::env::temp_dir);
        let run_dir = tempfile::Builder::new()
            .prefix("pgrepl-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir_in(base)
            .context("cannot create a private run directory")?;
        Ok(Context {
            inv,
            ui,
            renderer,
            accept_new_host_keys: opts.accept_new_host_keys,
            run_dir,
            kept: Default::default(),
            locks: Default::default(),
            pending_slots: Default::default(),
        })
    }
}

/// The connections of one run, by host name.
pub type Transports = BTreeMap<String, Result<Arc<dyn Transport>, String>>;

impl Context<'_> {
    /// Opens a connection to one host.
    pub async fn connect(&self, h: &Host) -> anyhow::Result<Arc<dyn Transport>> {
        Ok(match self.inv.transport {
            TransportKind::Local => Arc::new(LocalTransport::new(&h.name, &self.inv.os_user)?),
            TransportKind::Ssh => {
                let s = &self.inv.ssh;
                let target = ssh::SshTarget {
                    host: h.name.clone(),
                    destination: h.ssh_host.clone(),
                    user: s.user.clone(),
                    port: h.ssh_port,
                    identity_file: s.identity_file.clone(),
                    known_hosts_file: s.known_hosts_file.clone(),
                    config_file: s.config_file.clone(),
                    accept_new_host_keys: self.accept_new_host_keys
                        || s.host_keys == inventory::HostKeyPolicy::AcceptNew,
                    connect_timeout: self.inv.timeouts.connect,
                    os_user: self.inv.os_user.clone(),
                };
                let deadline = self.inv.timeouts.connect + std::time::Duration::from_secs(5);
                let t = tokio::time::timeout(
                    deadline,
                    ssh::SshTransport::connect(target, self.run_dir.path()),
                )
                .await
                .map_err(|_| {
                    anyhow::anyhow!(
                        "ssh did not connect within {}s (timeouts.connect)",
                        deadline.as_secs()
                    )
                })??;
                Arc::new(t)
            }
        })
    }

    /// A connection kept for the run: opened on first use, reused after.
    pub async fn kept(&self, h: &Host) -> anyhow::Result<Arc<dyn Transport>> {
        let cached = self.kept.lock().await.get(&h.name).cloned();
        if let Some(t) = cached {
            if t.alive().await {
                return Ok(t);
            }
            self.kept.lock().await.remove(&h.name);
        }
        let t = self.connect(h).await?;
        self.kept.lock().await.insert(h.name.clone(), t.clone());
        Ok(t)
    }

    /// Drops a kept connection (after it failed), so the next use reconnects.
    pub async fn forget(&self, h: &Host) {
        self.kept.lock().await.remove(&h.name);
    }

    /// Connects to every host at once; each result stands alone.
    pub async fn connect_all(&self) -> Transports {
        let futs = self.inv.hosts.iter().map(|h| async move {
            let r = self.kept(h).await.map_err(|e| format!("{e:#}"));
            (h.name.clone(), r)
        });
        futures_util::future::join_all(futs)
            .await
            .into_iter()
            .collect()
    }

    /// Opens a SQL connection to a host's server as the superuser (peer authentication through
    /// the socket the transport provides).
    pub async fn db(&self, t: &dyn Transport, h: &Host) -> anyhow::Result<Db> {
        let dir = t.pg_socket_dir(&h.socket_dir, h.port).await?;
        db::connect_host(
            &h.name,
            &dir,
            h.port,
            &self.inv.os_user,
            self.inv.timeouts.connect,
        )
        .await
    }

    /// Renders one host's files.
    pub fn rendered(&self, h: &Host) -> anyhow::Result<Rendered> {
        self.renderer.render(&self.inv, h)
    }
}

impl Context<'_> {
    /// Records a slot this run created on `host` for a replica that is not cloned yet.
    pub fn slot_pending(&self, host: &str, slot: &str) {
        self.pending_slots
            .lock()
            .expect("not poisoned")
            .push((host.to_string(), slot.to_string()));
    }

    /// The replica that uses `slot` is cloned: the slot stays.
    pub fn slot_kept(&self, slot: &str) {
        self.pending_slots
            .lock()
            .expect("not poisoned")
            .retain(|(_, s)| s != slot);
    }

    /// After a failure or an interruption: drops the slots of clones that did not finish, once
    /// no WAL sender uses them (the base backup was stopped when its connection ended).
    pub async fn undo(&self) {
        let pending = std::mem::take(&mut *self.pending_slots.lock().expect("not poisoned"));
        for (host, slot) in pending {
            let Some(h) = self.inv.host(&host) else {
                continue;
            };
            let r = async {
                let t = self.kept(h).await?;
                let db = self.db(t.as_ref(), h).await?;
                let exists = crate::wait::poll_until(
                    "base backup's WAL sender gone (10s)",
                    std::time::Duration::from_secs(10),
                    std::time::Duration::from_millis(100),
                    || async {
                        let slots = db.slots().await?;
                        Ok(match slots.iter().find(|s| s.name == slot) {
                            None => crate::wait::Poll::Ready(false),
                            Some(s) if !s.active => crate::wait::Poll::Ready(true),
                            Some(_) => crate::wait::Poll::Pending(format!("slot {slot} active")),
                        })
                    },
                )
                .await?;
                if exists {
                    db.drop_slot(&slot).await?;
                }
                anyhow::Ok(())
            }
            .await;
            match r {
                Ok(()) => self.ui.info(format!(
                    "{host}: dropped slot {slot}, created by this run for a clone that did not finish"
                )),
                Err(e) => self.ui.warn(format!(
                    "{host}: could not drop slot {slot} of an unfinished clone: {e:#}; \
                     re-run the command, or drop it: SELECT pg_drop_replication_slot('{slot}')"
                )),
            }
        }
    }
}

/// Runs a step; a non-zero exit becomes an error naming the host, the step and the output tail.
pub async fn run_step(
    t: &dyn Transport,
    cmd: &Cmd,
    step: &str,
    sink: Option<LineSink>,
) -> anyhow::Result<Output> {
    let out = t.run(cmd, sink).await.map_err(|e| {
        Error::step(
            t.host(),
            step,
            format!("could not run {}: {e:#}", cmd.program()),
        )
    })?;
    if !out.success() {
        return Err(Error::step(
            t.host(),
            step,
            format!("{} {}", cmd.program(), out.describe_status()),
        )
        .with_stderr(out.stderr_tail.clone())
        .into());
    }
    Ok(out)
}

/// The pg_ctl view of one host.
pub fn server(h: &Host) -> ctl::Server<'_> {
    ctl::Server {
        bin_dir: &h.bin_dir,
        data_dir: &h.data_dir,
        log_file: &h.log_file,
    }
}

/// Is the server of `h` running (`pg_ctl status`)?
pub async fn is_running(t: &dyn Transport, h: &Host) -> anyhow::Result<bool> {
    let cmd = Cmd::new(format!("{}/pg_ctl", h.bin_dir))
        .args(["status", "--pgdata", &h.data_dir])
        .env("LC_ALL", "C");
    Ok(t.run(&cmd, None).await?.success())
}

/// Writes `content` to `path` unless it is already there; returns the previous content when
/// the file changed (`Some("")` for a new file), `None` when nothing was written.
pub async fn install_file(
    t: &dyn Transport,
    path: &str,
    mode: &str,
    content: &str,
    step: &str,
) -> anyhow::Result<Option<String>> {
    let cur = t.run(&datadir::read_file(path), None).await?;
    let old = match cur.code {
        Some(0) => Some(cur.stdout),
        Some(datadir::READ_ABSENT) => None,
        _ => {
            return Err(
                Error::step(t.host(), step, format!("could not read {path}"))
                    .with_stderr(cur.stderr_tail)
                    .into(),
            )
        }
    };
    if old.as_deref() == Some(content) {
        return Ok(None);
    }
    run_step(
        t,
        &datadir::write_file(path, mode, content.as_bytes().to_vec()),
        step,
        None,
    )
    .await?;
    Ok(Some(old.unwrap_or_default()))
}

/// What converging a host's configuration changed.
#[derive(Debug, Default)]
pub struct ConfigChange {
    /// Files rewritten.
    pub files: Vec<&'static str>,
    /// postgresql.conf settings whose values changed.
    pub settings: Vec<String>,
}

/// Installs the rendered files into the data directory (only those that differ).
pub async fn install_configs(
    t: &dyn Transport,
    h: &Host,
    r: &Rendered,
) -> anyhow::Result<ConfigChange> {
    let mut ch = ConfigChange::default();
    for (name, content) in r.files() {
        let path = format!("{}/{name}", h.data_dir);
        if let Some(old) =
            install_file(t, &path, "0600", content, &format!("install {name}")).await?
        {
            if name == "postgresql.conf" {
                ch.settings = pg::changed_settings(&old, content);
            }
            ch.files.push(name);
        }
    }
    Ok(ch)
}

/// Starts a stopped server and waits until it accepts connections.
pub async fn start(ctx: &Context<'_>, t: &dyn Transport, h: &Host) -> anyhow::Result<()> {
    let t0 = Instant::now();
    run_step(
        t,
        &ctl::start(&server(h), ctx.inv.timeouts.start.as_secs()),
        "start PostgreSQL",
        None,
    )
    .await
    .map_err(|e| with_log_hint(e, h))?;
    ctx.ui.done(&h.name, "started PostgreSQL", t0.elapsed());
    Ok(())
}

fn with_log_hint(e: anyhow::Error, h: &Host) -> anyhow::Error {
    match e.downcast::<Error>() {
        Ok(err) => err
            .with_hint(format!(
                "read the server log on {}: tail -n 50 {}",
                h.name, h.log_file
            ))
            .into(),
        Err(e) => e,
    }
}

/// Applies a configuration change to a running server: reload, or restart when a changed
/// setting needs one. Returns what was done ("reloaded", "restarted") or None.
pub async fn apply_config(
    ctx: &Context<'_>,
    t: &dyn Transport,
    h: &Host,
    ch: &ConfigChange,
    restart_needed: bool,
) -> anyhow::Result<Option<&'static str>> {
    if ch.files.is_empty() {
        return Ok(None);
    }
    let t0 = Instant::now();
    if restart_needed {
        run_step(
            t,
            &ctl::restart(&server(h), ctx.inv.timeouts.start.as_secs()),
            "restart PostgreSQL",
            None,
        )
        .await
        .map_err(|e| with_log_hint(e, h))?;
        ctx.ui.done(
            &h.name,
            &format!("restarted PostgreSQL ({} changed)", ch.settings.join(", ")),
            t0.elapsed(),
        );
        Ok(Some("restarted"))
    } else {
        ctx.db(t, h)
            .await?
            .reload()
            .await
            .with_context(|| format!("{}: reload", h.name))?;
        ctx.ui.done(
            &h.name,
            &format!("reloaded configuration ({})", ch.files.join(", ")),
            t0.elapsed(),
        );
        Ok(Some("reloaded"))
    }
}

/// Would installing `r` on the running server of `h` need a restart? Returns the settings.
pub async fn restart_settings(
    ctx: &Context<'_>,
    t: &dyn Transport,
    h: &Host,
    r: &Rendered,
) -> anyhow::Result<Vec<String>> {
    let cur = t
        .run(
            &datadir::read_file(&format!("{}/postgresql.conf", h.data_dir)),
            None,
        )
        .await?;
    if !cur.success() {
        return Ok(Vec::new());
    }
    let changed = pg::changed_settings(&cur.stdout, &r.postgresql_conf);
    if changed.is_empty() {
        return Ok(changed);
    }
    ctx.db(t, h).await?.restart_only(&changed).await
}

/// Stops a server (fast shutdown; immediate if that fails) and proves it is down: `pg_ctl status`
/// reports no server. Returns its control data afterwards (the shutdown checkpoint).
pub async fn stop_and_prove_down(
    ctx: &Context<'_>,
    t: &dyn Transport,
    h: &Host,
) -> anyhow::Result<crate::pg::controldata::ControlData> {
    let t0 = Instant::now();
    let secs = ctx.inv.timeouts.start.as_secs();
    if t.run(&ctl::stop(&server(h), secs), None)
        .await
        .map(|o| !o.success())
        .unwrap_or(true)
    {
        let immediate = Cmd::new(format!("{}/pg_ctl", h.bin_dir))
            .args([
                "stop",
                "--pgdata",
                &h.data_dir,
                "--mode=immediate",
                "--wait",
                "--timeout",
                &secs.to_string(),
                "--silent",
            ])
            .env("LC_ALL", "C");
        run_step(t, &immediate, "stop PostgreSQL", None).await?;
    }
    if is_running(t, h).await? {
        return Err(Error::step(
            &h.name,
            "stop PostgreSQL",
            "pg_ctl stop returned, but the server still runs",
        )
        .with_hint(format!(
            "stop it by hand on {}: {}/pg_ctl stop -D {} -m immediate",
            h.name, h.bin_dir, h.data_dir
        ))
        .into());
    }
    ctx.ui.done(&h.name, "stopped PostgreSQL", t0.elapsed());
    controldata(t, h).await
}

/// `pg_controldata` of a host's data directory.
pub async fn controldata(
    t: &dyn Transport,
    h: &Host,
) -> anyhow::Result<crate::pg::controldata::ControlData> {
    let out = run_step(
        t,
        &crate::pg::controldata::cmd(&h.bin_dir, &h.data_dir),
        "pg_controldata",
        None,
    )
    .await?;
    Ok(crate::pg::controldata::parse(&out.stdout))
}

/// Writes `standby.signal` into a stopped server's data directory: if it starts again, it starts
/// read-only, as a standby, never as a second primary.
pub async fn fence(ctx: &Context<'_>, t: &dyn Transport, h: &Host) -> anyhow::Result<()> {
    install_file(
        t,
        &format!("{}/standby.signal", h.data_dir),
        "0600",
        "",
        "fence (write standby.signal)",
    )
    .await?;
    ctx.ui.info(format!(
        "{}: fenced: standby.signal written, it can only start read-only",
        h.name
    ));
    Ok(())
}

/// Creates `slot` on a server unless it exists; a slot that lost WAL is dropped and re-created.
pub async fn ensure_slot(
    ctx: &Context<'_>,
    db: &Db,
    on: &str,
    slot: &str,
    for_host: &str,
) -> anyhow::Result<()> {
    let state = db.node_state().await?;
    match state.slots.iter().find(|s| s.name == slot) {
        Some(s) if s.wal_status.as_deref() != Some("lost") => return Ok(()),
        Some(_) => {
            db.drop_slot(slot).await?;
            ctx.ui
                .info(format!("{on}: dropped slot {slot}, which had lost WAL"));
        }
        None => {}
    }
    db.create_physical_slot(slot)
        .await
        .map_err(|e| Error::step(on, "create replication slot", format!("slot {slot}: {e:#}")))?;
    ctx.ui.info(format!(
        "{on}: created physical replication slot {slot} for {for_host}"
    ));
    Ok(())
}

/// Renders `h` from `inv` (the live topology), installs what differs and applies it to the
/// running server (reload; restart only when a restart-only setting changed).
pub async fn converge_running(
    ctx: &Context<'_>,
    inv: &Inventory,
    t: &dyn Transport,
    h: &Host,
) -> anyhow::Result<()> {
    let r = ctx.renderer.render(inv, h)?;
    let restart = !restart_settings(ctx, t, h, &r).await?.is_empty();
    let ch = install_configs(t, h, &r).await?;
    apply_config(ctx, t, h, &ch, restart).await?;
    Ok(())
}

/// Installs a standby's rendered configuration (from `inv`, the live topology) and
/// `standby.signal`, then starts it.
pub async fn start_as_standby(
    ctx: &Context<'_>,
    inv: &Inventory,
    t: &dyn Transport,
    h: &Host,
) -> anyhow::Result<()> {
    let r = ctx.renderer.render(inv, h)?;
    install_configs(t, h, &r).await?;
    install_file(
        t,
        &format!("{}/standby.signal", h.data_dir),
        "0600",
        "",
        "write standby.signal",
    )
    .await?;
    start(ctx, t, h).await
}

/// Polls `pg_is_in_recovery()` until the promoted server accepts writes (`timeouts.promote`).
pub async fn wait_writable(inv: &Inventory, db: &Db) -> anyhow::Result<()> {
    crate::wait::poll_until(
        "timeouts.promote",
        inv.timeouts.promote,
        std::time::Duration::from_millis(10),
        || async {
            Ok(if db.in_recovery().await? {
                crate::wait::Poll::Pending("still in recovery".into())
            } else {
                crate::wait::Poll::Ready(())
            })
        },
    )
    .await
}

impl Context<'_> {
    /// The inventory host `name`, or a preflight refusal listing the hosts there are.
    pub fn host_named(&self, name: &str) -> Result<&Host, Error> {
        self.inv.host(name).ok_or_else(|| Error::Preflight {
            problems: vec![crate::error::Problem::new(
                name,
                "host",
                format!("{name} is not a host of {}", self.inv.file.display()),
                format!(
                    "use one of: {}",
                    self.inv
                        .hosts
                        .iter()
                        .map(|h| h.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )],
        })
    }
}
