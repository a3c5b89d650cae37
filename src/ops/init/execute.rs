//! Walking an [`InitPlan`]: one method per step kind, through the shared `steps`. Each step
//! reports what it did (with its duration) through `Ui` and records the changes it made for
//! the run's summary; the replicas of a wave run in parallel and the wave ends when all have. It
//! decides nothing: what runs, where and in which order is the plan's (`preflight`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::context::{Context, Transports};
use crate::error::{Error, OnStep};
use crate::inventory::{Host, Inventory, Secret};
use crate::pg::{ctl, datadir};
use crate::render::Rendered;
use crate::steps::clone::clone_via_staging;
use crate::steps::config::{apply_config, converge_running, install_configs, install_passfile};
use crate::steps::exec::run_step;
use crate::steps::hot_standby::replay_lower_values;
use crate::steps::roles::{ensure_database, ensure_role, RoleKind};
use crate::steps::server::{server, start};
use crate::steps::slots::{drop_stale_slots, ensure_slot};
use crate::steps::streaming::verify_streaming;
use crate::transport::Transport;

use super::plan::{InitPlan, InitStep, Lane, SlotFor};

/// Runs the steps of one `init`, with what they need: the hosts' connections (every host
/// reachable: preflight said so), their rendered files, the replication password.
pub(super) struct Executor<'c, 'u> {
    /// The run's context.
    pub ctx: &'c Context<'u>,
    /// The cluster to build or converge: the inventory, with the live primary as primary once
    /// the cluster exists.
    pub inv: &'c Inventory,
    /// Every host's connection (preflight made sure each is `Ok`).
    pub transports: &'c Transports,
    /// Every host's rendered configuration files, by host name.
    pub rendered: &'c BTreeMap<String, Rendered>,
    /// The replication (and rewind) password.
    pub password: &'c Secret,
    /// The application roles' passwords, in `inv.roles` order.
    pub app_passwords: &'c [Secret],
    /// Where the hosts' certificates come from (None with `tls: off`).
    pub certs: Option<&'c crate::steps::tls::ca::Certs>,
    /// What this run changed, one line per change ("pg1: initdb").
    pub changes: Mutex<Vec<String>>,
    /// Hosts whose TLS files changed: a running server reloads even if its configuration did
    /// not change.
    pub tls_changed: Mutex<std::collections::BTreeSet<String>>,
}

impl Executor<'_, '_> {
    /// The last step when the synchronous rule was left out of this run's files: every host's
    /// files rendered with it, installed and reloaded (`synchronous_standby_names` needs no
    /// restart). The primary goes last, so its rule names standbys that already stream.
    pub async fn enable_sync(&self) -> Result<(), Error> {
        let t0 = Instant::now();
        let primary = self.inv.primary();
        for h in self.inv.replicas().chain([primary]) {
            let t = self.transport(&h.name)?;
            converge_running(self.ctx, self.inv, t.as_ref(), h).await?;
        }
        let rule = self.inv.sync_names_for(primary);
        self.ctx.ui.done(
            &primary.name,
            &format!("synchronous replication enabled: {rule}"),
            t0.elapsed(),
        );
        self.note(format!(
            "{}: synchronous_standby_names = {rule}",
            primary.name
        ));
        Ok(())
    }

    /// Runs every step of `plan` in order; stops at the first failure.
    pub async fn walk(&self, plan: &InitPlan) -> Result<(), Error> {
        for step in &plan.steps {
            match step {
                InitStep::Wave { replicas, .. } => self.wave(replicas).await?,
                step => self.step(step).await?,
            }
        }
        self.drop_stale_slots().await
    }

    /// Once every replica streams: on each host, the inactive slots named after an inventory
    /// host that no longer follows it (a replica re-pointed with `upstream:`) are dropped, so
    /// they retain no WAL there for nobody. Slots pgrepl cannot tell are its own are left alone.
    async fn drop_stale_slots(&self) -> Result<(), Error> {
        for h in &self.inv.hosts {
            let t = self.transport(&h.name)?;
            for slot in drop_stale_slots(self.ctx, self.inv, t.as_ref(), h).await? {
                self.note(format!("{}: dropped stale slot {slot}", h.name));
            }
        }
        Ok(())
    }

    /// The changes made so far.
    pub fn into_changes(self) -> Vec<String> {
        self.changes.into_inner().expect("not poisoned")
    }

    pub(super) fn note(&self, change: String) {
        self.changes.lock().expect("not poisoned").push(change);
    }

    /// The inventory host a step names (the plan only names inventory hosts).
    pub(super) fn host(&self, name: &str) -> Result<&Host, Error> {
        self.inv
            .host(name)
            .map_or_else(|| self.ctx.host_named(name), Ok)
    }

    /// The connection to a host a step names (preflight proved every host reachable).
    pub(super) fn transport(&self, name: &str) -> Result<Arc<dyn Transport>, Error> {
        match self.transports.get(name) {
            Some(Ok(t)) => Ok(t.clone()),
            Some(Err(e)) => Err(Error::step(name, "connect", e.clone())),
            None => Err(Error::step(name, "connect", "not connected")),
        }
    }

    /// One step that is not a wave.
    async fn step(&self, step: &InitStep) -> Result<(), Error> {
        match step {
            InitStep::Initdb { host } => self.initdb(host).await,
            InitStep::Configure {
                host,
                running,
                restart,
            } => self.configure(host, *running, !restart.is_empty()).await,
            InitStep::PasswordFile { host } => self.password_file(host).await,
            InitStep::TlsFiles { host } => self.tls_files(host).await,
            InitStep::Roles {
                primary,
                replication_user,
                rewind_user,
                monitor_user,
            } => {
                let users = [replication_user, rewind_user, monitor_user];
                self.roles(primary, users.map(String::as_str)).await
            }
            InitStep::Slots { upstream, replicas } => self.slots(upstream, replicas).await,
            InitStep::Clone { host, .. } => self.clone_replica(host).await,
            InitStep::VerifyStreaming { primary, replicas } => {
                self.verify_streaming(primary, *replicas).await
            }
            InitStep::Routers { .. } => {
                for c in crate::steps::routers::apply(self.ctx, self.inv).await? {
                    self.note(c);
                }
                crate::steps::routers::verify(self.ctx, self.inv).await
            }
            InitStep::Wave { .. } => unreachable!("a wave is walked by `wave`, never nested"),
        }
    }

    /// The replicas of a wave in parallel, each its steps in order; the first failure (in wave
    /// order) once all have ended.
    async fn wave(&self, lanes: &[Lane]) -> Result<(), Error> {
        let jobs = lanes.iter().map(|lane| async move {
            for step in &lane.steps {
                self.step(step).await?;
            }
            Ok::<(), Error>(())
        });
        for r in futures_util::future::join_all(jobs).await {
            r?;
        }
        Ok(())
    }

    async fn initdb(&self, host: &str) -> Result<(), Error> {
        let inv = self.inv;
        let h = self.host(host)?;
        let t0 = Instant::now();
        run_step(
            self.transport(host)?.as_ref(),
            &ctl::initdb(&server(h), &inv.os_user, &inv.locale, "UTF8"),
            "initdb",
            None,
        )
        .await?;
        self.ctx
            .ui
            .done(host, "initdb (data checksums on)", t0.elapsed());
        self.note(format!("{host}: initdb"));
        Ok(())
    }

    /// Installs the configuration files, then starts the server or applies the change to it.
    async fn configure(&self, host: &str, running: bool, restart: bool) -> Result<(), Error> {
        let (ctx, h, t) = (self.ctx, self.host(host)?, self.transport(host)?);
        let t = t.as_ref();
        run_step(
            t,
            &datadir::ensure_dir(&h.socket_dir, "2775"),
            "create socket directory",
            None,
        )
        .await
        .map_err(|e| {
            e.with_hint(format!(
                "create it for the OS user on {host}: install -d -o {} -m 2775 {}",
                self.inv.os_user, h.socket_dir
            ))
        })?;
        let mut ch = install_configs(t, h, &self.rendered[host]).await?;
        if !ch.files.is_empty() {
            ctx.ui
                .detail(format!("{host}: installed {}", ch.files.join(", ")));
            self.note(format!("{host}: {}", ch.files.join(", ")));
        }
        if self
            .tls_changed
            .lock()
            .expect("not poisoned")
            .contains(host)
        {
            ch.files.push("TLS files");
        }
        // A standby restarts or starts only with hot-standby settings its control file allows:
        // after it replayed the primary's lower values (the primary went first).
        let standby = host != self.inv.primary().name;
        if standby && (!running || restart) {
            replay_lower_values(ctx, t, h, &self.rendered[host], running).await?;
        }
        if running {
            if let Some(what) = apply_config(ctx, t, h, &ch, restart).await? {
                self.note(format!("{host}: {what}"));
            }
        } else {
            start(ctx, t, h).await?;
            self.note(format!("{host}: started"));
        }
        Ok(())
    }

    async fn tls_files(&self, host: &str) -> Result<(), Error> {
        let Some(certs) = self.certs else {
            return Ok(());
        };
        let t = self.transport(host)?;
        let h = self.host(host)?;
        let changes =
            crate::steps::tls::install(self.ctx, self.inv, t.as_ref(), h, certs, false).await?;
        if !changes.is_empty() {
            self.tls_changed
                .lock()
                .expect("not poisoned")
                .insert(host.to_string());
        }
        for c in changes {
            self.note(c);
        }
        Ok(())
    }

    async fn password_file(&self, host: &str) -> Result<(), Error> {
        let t = self.transport(host)?;
        if install_passfile(self.ctx, t.as_ref(), self.host(host)?, self.password).await? {
            self.note(format!("{host}: password file"));
        }
        Ok(())
    }

    /// The replication, rewind and monitor roles (`users`, in that order), the application
    /// roles and databases, on the primary.
    async fn roles(&self, primary: &str, users: [&str; 3]) -> Result<(), Error> {
        let [replication, rewind, monitor] = users;
        let t = self.transport(primary)?;
        let db = self
            .ctx
            .db(t.as_ref(), self.host(primary)?)
            .await
            .on_step(primary, "roles")?;
        let own = [
            (replication, RoleKind::Replication, Some(self.password)),
            (rewind, RoleKind::Rewind, Some(self.password)),
            (monitor, RoleKind::Monitor, None),
        ];
        let apps = (self.inv.roles.iter().zip(self.app_passwords))
            .map(|(r, pw)| (r.name.as_str(), RoleKind::Application, Some(pw)));
        for (user, kind, pw) in own.into_iter().chain(apps) {
            for c in ensure_role(self.ctx, &db, primary, user, kind, pw).await? {
                self.note(c);
            }
        }
        for d in &self.inv.databases {
            for c in ensure_database(self.ctx, &db, primary, d).await? {
                self.note(c);
            }
        }
        Ok(())
    }

    /// Creates the missing slots on `up`, and re-creates an invalidated one (a replica kept
    /// down past 18's `idle_replication_slot_timeout` streams again from its new slot); a slot
    /// of a replica cloned by this run is dropped again if the run ends before the clone does.
    async fn slots(&self, up: &str, replicas: &[SlotFor]) -> Result<(), Error> {
        let ctx = self.ctx;
        let db = ctx.db(self.transport(up)?.as_ref(), self.host(up)?).await?;
        for s in replicas {
            if ensure_slot(ctx, &db, self.host(up)?, &s.slot, &s.replica).await? {
                self.note(format!("{up}: slot {}", s.slot));
            }
            if s.clone {
                ctx.slot_pending(up, &s.slot);
            }
        }
        Ok(())
    }

    /// A new replica: clone through staging, then remove the empty directory moved aside.
    async fn clone_replica(&self, host: &str) -> Result<(), Error> {
        let (ctx, h, t) = (self.ctx, self.host(host)?, self.transport(host)?);
        let t = t.as_ref();
        let cloned = clone_via_staging(ctx, self.inv, t, h).await?;
        // The data directory was blank: the moved-aside copy is an empty directory. What a
        // tablespace directory held before is not pgrepl's to remove.
        let step = "remove the empty directory";
        run_step(
            t,
            &datadir::remove_ours(&datadir::old_dir(&cloned.data_dir)),
            step,
            None,
        )
        .await?;
        for ts in &cloned.tablespaces {
            let old = datadir::tablespace_old(ts);
            if run_step(t, &datadir::remove_if_empty(&old), step, None)
                .await?
                .stdout
                .contains("kept")
            {
                ctx.ui.warn(format!(
                    "{host}: {ts} held files before the clone; they are kept in {old}"
                ));
            }
        }
        ctx.slot_kept(&h.slot);
        self.note(format!("{host}: cloned"));
        Ok(())
    }

    async fn verify_streaming(&self, primary: &str, replicas: usize) -> Result<(), Error> {
        let t0 = Instant::now();
        verify_streaming(self.ctx, self.inv, &[]).await?;
        self.ctx.ui.done(
            primary,
            &if self.inv.replicas().any(|h| h.apply_delay.is_some()) {
                format!("{replicas} replica(s) verified: streaming, every slot active (a delayed replica: running in recovery)")
            } else {
                format!("{replicas} replica(s) streaming, every slot active")
            },
            t0.elapsed(),
        );
        Ok(())
    }
}
