//! Gathering preflight facts: on every host at once, how it was reached, which server binaries
//! it has, what its data directory holds, whether its server runs and of which cluster (system
//! identifier) it is; also which of the inventory's settings its server binaries refuse, which
//! host-name addresses its resolver does not map back to themselves, and the state of the
//! directory holding the data directory, the socket directory and the port. Reads only; changes
//! nothing (the settings check never starts a server). `init` and `check` decide from these facts
//! (`ops::init::preflight`, which does no I/O).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::context::{Context, Login, Transports};
use crate::inventory::{Host, Inventory};
use crate::pg::{self, autoconf, controldata, ctl, datadir, guc, hba, hostdirs, hot_standby};
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
    /// The inventory's `postgres.settings` the host's server binaries refuse: (name, the
    /// server's words), or why they could not be checked; `None` when not checked (no binaries).
    pub refused_settings: Option<Result<Vec<(String, String)>, String>>,
    /// Host names among the inventory's addresses that this host's resolver does not map back
    /// to themselves, so its pg_hba.conf name lines would admit nobody (`pg::hba`).
    pub hba_names: Vec<hba::Mismatch>,
    /// The data directory's parent, the socket directory and the port (`pg::hostdirs`);
    /// `None` when the probe could not run.
    pub dirs: Option<hostdirs::HostDirs>,
    /// Hot-standby settings the running server took from its command line (a start with its
    /// recorded values, `steps::hot_standby`, that a run cut short left running): a restart
    /// gives it postgresql.conf's.
    pub from_command_line: Vec<String>,
    /// TLS is on, and the server binaries refuse `ssl = on`: their words ("SSL is not supported
    /// by this build"); `None` when they accept it (or TLS is off).
    pub no_ssl: Option<String>,
    /// The running server has `ssl` off, or streams WAL to a receiver without TLS: moving the
    /// cluster to TLS keeps `host` lines until every replica streams over TLS.
    pub tls_plain: bool,
    /// The running server's `ssl` setting; `None` when it does not run.
    pub ssl_on: Option<bool>,
    /// The running standby's `primary_conninfo` (no password is ever in it: pgrepl's name a
    /// `passfile`); `None` when it does not run or is not a standby.
    pub conninfo: Option<String>,
    /// The running server refused the monitor role's login (its words), so `check` read it as
    /// the superuser (`Context::monitor_db`); `None` when it did not, or when the superuser was
    /// asked (`init`, `destroy`).
    pub monitor_refused: Option<String>,
}

/// Gathers the facts of every inventory host, all hosts at once, in inventory order, reading
/// running servers as `login` (`check` as the monitor role; `init` and `destroy`, which change
/// the cluster, as the superuser). A host whose connection failed gets only
/// `reach: Some(Err(why))`.
pub async fn gather(ctx: &Context<'_>, transports: &Transports, login: Login) -> Vec<HostFacts> {
    let futs = ctx.inv.hosts.iter().map(|h| async move {
        match &transports[&h.name] {
            Ok(t) => facts(ctx, t.clone(), h, login).await,
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
async fn facts(ctx: &Context<'_>, t: Arc<dyn Transport>, h: &Host, login: Login) -> HostFacts {
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
    if matches!(f.binaries, Some(Ok(_))) {
        let settings = ctx.inv.settings_for(h);
        f.refused_settings = Some(refused_settings(t, h, &settings).await);
        if ctx.inv.tls.is_on() {
            f.no_ssl = no_ssl(t, h).await;
        }
    }
    f.hba_names = hba_names(t, &ctx.inv).await;
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
    let probe = hostdirs::probe(&h.data_dir, &h.socket_dir, h.port);
    f.dirs = match t.run(&probe, None).await {
        Ok(o) if o.success() => Some(hostdirs::parse(&o.stdout)),
        _ => None,
    };
    if matches!(f.data_dir, Some(datadir::DirState::PgData { .. })) {
        f.auto_conf_overrides = auto_conf_overrides(t, h).await;
        f.running = is_running(t, h).await.unwrap_or(false);
        if f.running {
            match ctx.reading_db(login, t, h).await {
                Ok(r) => {
                    server_facts(&r.db, &mut f).await;
                    f.monitor_refused = r.monitor_refused;
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

/// Whether the host's server binaries are built without SSL: `postgres -C port -c ssl=on` is
/// refused with "SSL is not supported by this build" (nothing is started).
async fn no_ssl(t: &dyn Transport, h: &Host) -> Option<String> {
    let cmd = guc::check_cmd(&h.bin_dir, [("ssl", "on")]);
    let out = t.run(&cmd, None).await.ok()?;
    out.stderr_tail
        .iter()
        .find(|l| l.contains("SSL is not supported"))
        .map(|l| {
            l.split_once("FATAL:")
                .map_or(l.as_str(), |(_, m)| m)
                .trim()
                .to_string()
        })
}

/// The entries of the data directory's `postgresql.auto.conf` a standby must not inherit, with
/// their lines (none when it cannot be read).
async fn auto_conf_overrides(t: &dyn Transport, h: &Host) -> Vec<(String, usize)> {
    let auto = format!("{}/{}", h.data_dir, autoconf::FILE);
    match t.run(&datadir::read_file(&auto), None).await {
        Ok(o) if o.success() => autoconf::clean(&o.stdout)
            .map(|(_, removed)| removed.into_iter().map(|r| (r.name, r.line)).collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// What the running server says of itself: its cluster, whether it is in recovery, its idle
/// slot timeout, the hot-standby settings it took from its command line.
async fn server_facts(db: &crate::db::Db, f: &mut HostFacts) {
    f.system_identifier = db.system_identifier().await.ok();
    f.in_recovery = db.in_recovery().await.ok();
    f.idle_slot_timeout_s = db.idle_slot_timeout().await.ok().flatten();
    let hot: Vec<String> = hot_standby::PARAMS
        .iter()
        .map(|p| p.0.to_string())
        .collect();
    f.from_command_line = db.from_command_line(&hot).await.unwrap_or_default();
    f.tls_plain = db.plain_replication().await.unwrap_or(true);
    f.ssl_on = db.ssl_on().await.ok();
    if f.in_recovery == Some(true) {
        f.conninfo = db.primary_conninfo().await.ok();
    }
}

/// The settings the host's server binaries refuse (`pg::guc`): checked all at once, then again
/// without each refused one, until the rest are accepted. Nothing is started.
async fn refused_settings(
    t: &dyn Transport,
    h: &Host,
    settings: &BTreeMap<String, String>,
) -> Result<Vec<(String, String)>, String> {
    let mut refused: Vec<(String, String)> = Vec::new();
    loop {
        let names: Vec<String> = refused.iter().map(|(n, _)| n.clone()).collect();
        let left = guc::without(settings, &names);
        if left.is_empty() {
            return Ok(refused);
        }
        let cmd = guc::check_cmd(&h.bin_dir, left.iter().copied());
        let out = t.run(&cmd, None).await.map_err(|e| format!("{e:#}"))?;
        let left_names: Vec<&str> = left.iter().map(|(n, _)| *n).collect();
        match guc::verdict(&out.stderr_tail, &left_names) {
            guc::Verdict::Accepted => {
                refused.extend(missing_libraries(t, h, settings).await);
                return Ok(refused);
            }
            guc::Verdict::Refused { name, message } => refused.push((name, message)),
            guc::Verdict::Unknown(why) => {
                return Err(format!(
                    "{}/postgres could not check them: {why}",
                    h.bin_dir
                ))
            }
        }
    }
}

/// The preload settings whose libraries are not installed on the host: the server would
/// accept the value and then fail to start (`could not access file`).
async fn missing_libraries(
    t: &dyn Transport,
    h: &Host,
    settings: &BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for name in guc::PRELOAD_SETTINGS {
        let Some(value) = settings.get(*name) else {
            continue;
        };
        let libs = guc::libraries(value);
        if libs.is_empty() {
            continue;
        }
        let Ok(o) = t.run(&guc::libraries_cmd(&h.bin_dir, &libs), None).await else {
            continue;
        };
        for (lib, dir) in guc::missing_libraries(&o.stdout) {
            out.push((
                name.to_string(),
                format!("library \"{lib}\" is not installed in {dir}: the server would not start (could not access file \"{lib}\")"),
            ));
        }
    }
    out
}

/// The inventory's host-name addresses that do not resolve back to themselves on this host
/// (no lookup when every address is an IP). A lookup that cannot run is reported as a
/// mismatch of every name: init cannot know that its pg_hba.conf lines admit anyone.
async fn hba_names(t: &dyn Transport, inv: &Inventory) -> Vec<hba::Mismatch> {
    let mut names: Vec<&str> = inv
        .hosts
        .iter()
        .map(|h| h.address.as_str())
        .filter(|a| a.parse::<std::net::IpAddr>().is_err())
        .collect();
    names.sort();
    names.dedup();
    if names.is_empty() {
        return Vec::new();
    }
    match t.run(&hba::lookup(&names), None).await {
        Ok(o) if o.success() => hba::mismatches(&o.stdout),
        other => {
            let why = match other {
                Ok(o) => o.stderr_tail.join(" "),
                Err(e) => format!("{e:#}"),
            };
            names
                .iter()
                .map(|n| hba::Mismatch {
                    name: n.to_string(),
                    why: format!("{n} could not be looked up (getent): {why}"),
                    ip: None,
                })
                .collect()
        }
    }
}
