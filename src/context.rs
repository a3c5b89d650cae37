//! The run's context: the loaded inventory, the one `Ui`, the template renderer, and the
//! connections to the hosts (opened once, kept for the run). Every step and operation works
//! through it. It owns no PostgreSQL knowledge beyond opening a SQL session (`db`: as the
//! superuser, or to read as the monitor role, `reading`), and prints only through `Ui`.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;

use crate::db::{self, Db};
use crate::error::{Error, InventoryIssue, OnStep, Problem, StepFailure};
use crate::inventory::{self, Host, Inventory, Router, TransportKind};
use crate::render::{Rendered, Renderer};
use crate::transport::{local::LocalTransport, ssh, Spawned, Transport};
use crate::ui::Ui;

mod reading;
pub use reading::{Login, Reading};

/// The cluster lock held on one host: the process holding the `flock` there, alive as long as
/// its stdin (taken and released by `steps::lock`).
pub struct HeldLock {
    /// The host whose lock is held.
    pub host: String,
    /// The holding process.
    pub(crate) spawned: Spawned,
}

/// What every operation works with.
pub struct Context<'a> {
    /// The loaded inventory, every value validated (`inventory::load`).
    pub inv: Inventory,
    /// The run's one output owner: everything printed goes through it.
    pub ui: &'a Ui,
    /// The config file templates (embedded, or overridden by `--templates`), rendered per host.
    pub renderer: Renderer,
    /// `--accept-new-host-keys`: trust an unknown SSH host key on first use (never a changed one).
    pub accept_new_host_keys: bool,
    /// After promote, switchover and rebuild, update the inventory file's roles and upstreams
    /// (off with `--no-write-inventory`).
    pub write_inventory: bool,
    /// `--dry-run`: check and print the plan, change nothing.
    pub dry_run: bool,
    /// What the command reported as its result (for the history record).
    result: std::sync::Mutex<Option<serde_json::Value>>,
    /// What an interruption leaves from the current step on (see `interrupted_after`).
    interrupted_after: std::sync::Mutex<Option<StepFailure>>,
    /// A replica this run stopped for a clone that has not replaced its data yet: started again
    /// on its previous data if the run ends now.
    stopped_for_clone: std::sync::Mutex<Option<String>>,
    /// PgBouncer write routes this run paused and has not resumed: resumed if the run ends now.
    writes_paused: std::sync::atomic::AtomicBool,
    /// Connections kept for the rest of the run (`status --wait` and `--watch` poll many times).
    kept: tokio::sync::Mutex<BTreeMap<String, Arc<dyn Transport>>>,
    /// The cluster lock, while this run holds it.
    pub(crate) locks: tokio::sync::Mutex<Vec<HeldLock>>,
    /// Slots this run created for replicas that are not cloned yet: dropped if the run fails
    /// or is interrupted, so the upstream keeps no stray slot (host, slot).
    pending_slots: std::sync::Mutex<Vec<(String, String)>>,
    /// The primary a switchover stopped before promoting its candidate (see `rollback_pending`).
    pending_rollback: std::sync::Mutex<Option<String>>,
    /// Hosts where this run's `pg_basebackup` runs now: if the run ends, `steps::undo` makes
    /// sure nothing of it is left there.
    running_clones: std::sync::Mutex<Vec<String>>,
    /// Private (0700) per-run directory: ssh control sockets and forwarded server sockets.
    /// Declared last so that it is removed after every connection kept above was closed (a
    /// master is told to exit through its socket in there).
    run_dir: tempfile::TempDir,
}

/// Settings of a run that come from the command line (as plain values, not clap types).
pub struct RunOptions<'p> {
    /// `-i` / `PGREPL_INVENTORY`: the inventory file; `None` makes [`Context::new`] fail with an
    /// inventory error.
    pub inventory: Option<&'p Path>,
    /// `--templates` / `PGREPL_TEMPLATES`: a directory whose templates replace the embedded ones;
    /// `None` for the embedded ones.
    pub templates: Option<&'p Path>,
    /// `--accept-new-host-keys`: trust unknown SSH host keys on first use (never a changed one).
    pub accept_new_host_keys: bool,
    /// Not `--no-write-inventory`: update `role:`/`upstream:` in the file after a change.
    pub write_inventory: bool,
    /// `--dry-run`.
    pub dry_run: bool,
}

impl<'a> Context<'a> {
    /// Loads and validates the inventory (nothing is contacted) and prepares a run.
    pub fn new(opts: RunOptions<'_>, ui: &'a Ui) -> anyhow::Result<Context<'a>> {
        let Some(path) = opts.inventory else {
            return Err(Error::Inventory {
                file: "(none)".into(),
                issues: vec![InventoryIssue {
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
            write_inventory: opts.write_inventory,
            dry_run: opts.dry_run,
            result: Default::default(),
            interrupted_after: Default::default(),
            stopped_for_clone: Default::default(),
            writes_paused: Default::default(),
            run_dir,
            kept: Default::default(),
            locks: Default::default(),
            pending_slots: Default::default(),
            pending_rollback: Default::default(),
            running_clones: Default::default(),
        })
    }
}

/// The connections of one run, by host name.
pub type Transports = BTreeMap<String, Result<Arc<dyn Transport>, String>>;

impl Context<'_> {
    /// Opens a connection to one host.
    pub async fn connect(&self, h: &Host) -> anyhow::Result<Arc<dyn Transport>> {
        self.connect_machine(&h.name, &h.ssh_host, h.ssh_port).await
    }

    /// Opens a connection to the machine a router runs on (this machine with the local
    /// transport).
    pub async fn connect_router(&self, r: &Router) -> anyhow::Result<Arc<dyn Transport>> {
        self.connect_machine(&r.name, &r.ssh_host, r.ssh_port).await
    }

    /// A connection to a router's machine kept for the run (names are unique across hosts and
    /// routers).
    pub async fn kept_router(&self, r: &Router) -> anyhow::Result<Arc<dyn Transport>> {
        let cached = self.kept.lock().await.get(&r.name).cloned();
        if let Some(t) = cached {
            if t.alive().await {
                return Ok(t);
            }
        }
        let t = self.connect_router(r).await?;
        self.kept.lock().await.insert(r.name.clone(), t.clone());
        Ok(t)
    }

    /// Opens a connection to machine `destination:port`, named `name` in messages.
    async fn connect_machine(
        &self,
        name: &str,
        destination: &str,
        port: u16,
    ) -> anyhow::Result<Arc<dyn Transport>> {
        Ok(match self.inv.transport {
            TransportKind::Local => Arc::new(LocalTransport::new(name, &self.inv.os_user)?),
            TransportKind::Ssh => {
                let s = &self.inv.ssh;
                let target = ssh::SshTarget {
                    host: name.to_string(),
                    destination: destination.to_string(),
                    user: s.user.clone(),
                    port,
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

    /// Closes every kept connection and waits (5 s at most) until their ssh masters are gone:
    /// no ssh process of a run outlives it. Called once the operation has ended.
    pub async fn close_all(&self) {
        let kept = std::mem::take(&mut *self.kept.lock().await);
        let pids: Vec<u32> = kept.values().filter_map(|t| t.master_pid()).collect();
        // The last reference to each session: dropping it tells its master to exit.
        drop(kept);
        let gone = crate::wait::poll_until(
            "ssh masters exit (5 s)",
            std::time::Duration::from_secs(5),
            std::time::Duration::from_millis(20),
            || async {
                let left: Vec<&u32> = pids.iter().filter(|p| process_alive(**p)).collect();
                Ok(if left.is_empty() {
                    crate::wait::Poll::Ready(())
                } else {
                    crate::wait::Poll::Pending(format!("ssh masters still running: {left:?}"))
                })
            },
        )
        .await;
        if let Err(e) = gone {
            tracing::warn!("{e}");
        }
    }

    /// The command's result: kept for the history record, and printed as the JSON document with
    /// `--format json`.
    /// The document is one of the types `schemas` lists (`schemas/<command>.schema.json`).
    pub fn result<D: serde::Serialize>(&self, doc: &D) {
        let doc = serde_json::to_value(doc).expect("documents serialize");
        if self.ui.format() == crate::ui::Format::Json {
            self.ui.json(&doc);
        }
        *self.result.lock().expect("not poisoned") = Some(doc);
    }

    /// The result the command reported, if any.
    pub fn take_result(&self) -> Option<serde_json::Value> {
        self.result.lock().expect("not poisoned").take()
    }

    /// Notes that PgBouncer write routes are paused (`true`) or resumed (`false`).
    pub fn writes_paused(&self, paused: bool) {
        self.writes_paused
            .store(paused, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether write routes were left paused; clears the note.
    pub fn take_writes_paused(&self) -> bool {
        self.writes_paused
            .swap(false, std::sync::atomic::Ordering::SeqCst)
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

    /// A SQL session on `h`'s server through its kept connection; a failure is a failure of
    /// `step` on `h`.
    pub async fn session(&self, h: &Host, step: &str) -> Result<Db, Error> {
        let t = self.kept(h).await.on_step(&h.name, step)?;
        self.db(t.as_ref(), h).await.on_step(&h.name, step)
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

    /// The slots of clones this run did not finish (taken: `steps::undo` drops them).
    pub fn take_pending_slots(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.pending_slots.lock().expect("not poisoned"))
    }

    /// A switchover stopped (and fenced) the primary `host` and has not promoted the candidate
    /// yet: if the run ends now, `steps::undo` starts `host` again as the primary.
    pub fn rollback_pending(&self, host: &str) {
        *self.pending_rollback.lock().expect("not poisoned") = Some(host.to_string());
    }

    /// A `pg_basebackup` of this run runs on `host` now.
    pub fn clone_running(&self, host: &str) {
        self.running_clones
            .lock()
            .expect("not poisoned")
            .push(host.to_string());
    }

    /// The `pg_basebackup` on `host` ended (its command returned).
    pub fn clone_ended(&self, host: &str) {
        self.running_clones
            .lock()
            .expect("not poisoned")
            .retain(|h| h != host);
    }

    /// The hosts whose `pg_basebackup` had not ended when the run was cut short (taken).
    pub fn take_running_clones(&self) -> Vec<String> {
        std::mem::take(&mut *self.running_clones.lock().expect("not poisoned"))
    }

    /// The candidate is being promoted (or the rollback is under way): nothing to restart.
    pub fn take_pending_rollback(&self) -> Option<String> {
        self.pending_rollback.lock().expect("not poisoned").take()
    }

    /// What an interruption from now on leaves, and the command that finishes the job (a
    /// switchover past its promotion): the interruption then says so instead of "re-run".
    pub fn interrupted_after(&self, what: StepFailure) {
        *self.interrupted_after.lock().expect("not poisoned") = Some(what);
    }

    /// `host` was stopped for a clone whose copy has not replaced its data (`None`: it has, or
    /// the clone is over): if the run ends meanwhile, `steps::undo` starts it again.
    pub fn stopped_for_clone(&self, host: Option<&str>) {
        *self.stopped_for_clone.lock().expect("not poisoned") = host.map(str::to_string);
    }

    /// See [`Context::stopped_for_clone`].
    pub fn take_stopped_for_clone(&self) -> Option<String> {
        self.stopped_for_clone.lock().expect("not poisoned").take()
    }

    /// See [`Context::interrupted_after`].
    pub fn take_interrupted_after(&self) -> Option<StepFailure> {
        self.interrupted_after.lock().expect("not poisoned").take()
    }
}

impl Context<'_> {
    /// The inventory host `name`, or a preflight refusal listing the hosts there are.
    pub fn host_named(&self, name: &str) -> Result<&Host, Error> {
        self.inv.host(name).ok_or_else(|| Error::Preflight {
            problems: vec![Problem::new(
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

/// Whether process `pid` on this machine still runs (a zombie counts as gone).
fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .map(|r| !r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}
