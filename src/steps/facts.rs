//! Gathering preflight facts: on every host at once, how it was reached, which server binaries
//! it has, what its data directory holds, whether its server runs and of which cluster (system
//! identifier) it is. Reads only; changes nothing. `init` and `check` decide from these facts
//! (`ops::init::preflight`, which does no I/O).

use std::sync::Arc;

use crate::context::{Context, Transports};
use crate::inventory::Host;
use crate::pg::{self, autoconf, controldata, ctl, datadir};
use crate::transport::Transport;

use super::server::is_running;

/// What preflight learned about one host. Plain values: a preflight test builds them by hand.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct HostFacts {
    /// The inventory host's name.
    pub name: String,
    /// How the host was reached (`ssh postgres@…`, `local`), or why it could not be (also: the
    /// data directory could not be inspected, or the running server refused pgrepl's session).
    pub reach: Option<Result<String, String>>,
    /// Major version of the installed server binaries, or why it is unknown.
    pub binaries: Option<Result<u32, String>>,
    /// What the data directory holds; `None` when the probe's output could not be parsed.
    pub data_dir: Option<datadir::DirState>,
    /// A server runs on the data directory (`pg_ctl status`).
    pub running: bool,
    /// The cluster's system identifier: from the running server, else from `pg_controldata`.
    pub system_identifier: Option<String>,
    /// `pg_is_in_recovery()` of the running server; `None` when it does not run.
    pub in_recovery: Option<bool>,
    /// The running server's `idle_replication_slot_timeout` in seconds (PostgreSQL 18+);
    /// `None` when it does not run or has no such setting.
    pub idle_slot_timeout_s: Option<i64>,
    /// The settings its `postgresql.auto.conf` sets that a standby must not inherit (they
    /// override pgrepl's `postgresql.conf`), with their lines.
    pub auto_conf_overrides: Vec<(String, usize)>,
}

/// Gathers the facts of every inventory host, all hosts at once, in inventory order. A host
/// whose connection failed gets only `reach: Some(Err(why))`.
pub async fn gather(ctx: &Context<'_>, transports: &Transports) -> Vec<HostFacts> {
    let futs = ctx.inv.hosts.iter().map(|h| async move {
        match &transports[&h.name] {
            Ok(t) => facts(ctx, t.clone(), h).await,
            Err(e) => HostFacts {
                name: h.name.clone(),
                reach: Some(Err(e.clone())),
                ..HostFacts::default()
            },
        }
    });
    futures_util::future::join_all(futs).await
}

/// The facts of one reachable host. Never fails: what could not be learned is recorded.
async fn facts(ctx: &Context<'_>, t: Arc<dyn Transport>, h: &Host) -> HostFacts {
    let mut f = HostFacts {
        name: h.name.clone(),
        reach: Some(Ok(t.describe())),
        ..HostFacts::default()
    };
    let t = t.as_ref();
    f.binaries = Some(match t.run(&ctl::version(&h.bin_dir), None).await {
        Ok(o) if o.success() => pg::parse_major_version(&o.stdout)
            .ok_or_else(|| format!("cannot parse {:?}", o.stdout.trim())),
        Ok(o) => Err(o
            .stderr_tail
            .last()
            .cloned()
            .unwrap_or_else(|| o.describe_status())),
        Err(e) => Err(format!("{e:#}")),
    });
    match t.run(&datadir::probe(&h.data_dir), None).await {
        Ok(o) if o.success() => f.data_dir = datadir::parse(&o.stdout),
        Ok(o) => {
            f.reach = Some(Err(format!(
                "cannot inspect {}: {}",
                h.data_dir,
                o.stderr_tail.join(" ")
            )));
            return f;
        }
        Err(e) => {
            f.reach = Some(Err(format!("{e:#}")));
            return f;
        }
    }
    if matches!(f.data_dir, Some(datadir::DirState::PgData { .. })) {
        let auto = format!("{}/{}", h.data_dir, autoconf::FILE);
        if let Ok(o) = t.run(&datadir::read_file(&auto), None).await {
            if let Some((_, removed)) = autoconf::clean(&o.stdout).filter(|_| o.success()) {
                f.auto_conf_overrides = removed.into_iter().map(|r| (r.name, r.line)).collect();
            }
        }
        f.running = is_running(t, h).await.unwrap_or(false);
        if f.running {
            match ctx.db(t, h).await {
                Ok(db) => {
                    f.system_identifier = db.system_identifier().await.ok();
                    f.in_recovery = db.in_recovery().await.ok();
                    f.idle_slot_timeout_s = db.idle_slot_timeout().await.ok().flatten();
                }
                Err(e) => {
                    f.reach = Some(Err(format!(
                        "the server runs but pgrepl cannot connect to it: {e:#}"
                    )));
                    return f;
                }
            }
        } else if let Ok(o) = t
            .run(&controldata::cmd(&h.bin_dir, &h.data_dir), None)
            .await
        {
            f.system_identifier = controldata::parse(&o.stdout).system_identifier;
        }
    }
    f
}
