//! `pgrepl check`: preflight on every host at once, changing nothing. `init` runs the same
//! gathering and planning before its first change.

use std::sync::Arc;

use crate::cluster::{self, HostFacts, HostPlan};
use crate::error::{exit, Error, Problem};
use crate::inventory::Host;
use crate::pg::{self, controldata, ctl, datadir};
use crate::transport::Transport;
use crate::ui::Format;

use crate::steps::server::is_running;

use super::{Context, Transports};

/// Gathers the facts of every host, all hosts at once.
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
        f.running = is_running(t, h).await.unwrap_or(false);
        if f.running {
            match ctx.db(t, h).await {
                Ok(db) => {
                    f.system_identifier = db.system_identifier().await.ok();
                    f.in_recovery = db.in_recovery().await.ok();
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

/// Runs preflight and returns the plan, or the problems as an error (exit code 4).
pub async fn preflight(
    ctx: &Context<'_>,
    transports: &Transports,
) -> anyhow::Result<(Vec<HostFacts>, std::collections::BTreeMap<String, HostPlan>)> {
    let facts = gather(ctx, transports).await;
    match cluster::plan_init(&ctx.inv, &facts) {
        Ok(plan) => Ok((facts, plan)),
        Err(problems) => Err(Error::Preflight { problems }.into()),
    }
}

/// `pgrepl check`.
pub async fn run(ctx: &Context<'_>) -> Result<u8, Error> {
    let transports = ctx.connect_all().await;
    let facts = gather(ctx, &transports).await;
    let outcome = cluster::plan_init(&ctx.inv, &facts);
    let problems: Vec<Problem> = outcome.as_ref().err().cloned().unwrap_or_default();
    let plan = outcome.unwrap_or_default();
    match ctx.ui.format() {
        Format::Json => {
            let hosts: Vec<_> = facts
                .iter()
                .map(|f| {
                    serde_json::json!({
                        "name": f.name,
                        "reachable": matches!(f.reach, Some(Ok(_))),
                        "reached_by": f.reach.as_ref().and_then(|r| r.as_ref().ok()),
                        "server_major_version": f.binaries.as_ref().and_then(|b| b.as_ref().ok()),
                        "data_dir": f.data_dir,
                        "running": f.running,
                        "system_identifier": f.system_identifier,
                        "in_recovery": f.in_recovery,
                        "init_would": plan.get(&f.name),
                    })
                })
                .collect();
            ctx.ui.json(&serde_json::json!({ "cluster": ctx.inv.cluster, "ok": problems.is_empty(), "hosts": hosts, "problems": problems }));
        }
        Format::Text | Format::Prometheus => {
            let mut out = format!(
                "{:<12} {:<9} {:<8} {:<26} {}\n",
                "HOST", "REACHABLE", "VERSION", "DATA DIRECTORY", "INIT WOULD"
            );
            for f in &facts {
                let dir = match &f.data_dir {
                    Some(datadir::DirState::PgData { standby: true, .. }) => {
                        format!("standby{}", if f.running { ", running" } else { "" })
                    }
                    Some(datadir::DirState::PgData { standby: false, .. }) => {
                        format!("primary{}", if f.running { ", running" } else { "" })
                    }
                    Some(d) => format!("{d:?}")
                        .split([' ', '{'])
                        .next()
                        .unwrap_or("")
                        .to_lowercase(),
                    None => "-".into(),
                };
                let would = match plan.get(&f.name) {
                    Some(HostPlan::Initdb) => "initdb",
                    Some(HostPlan::KeepPrimary) => "keep (primary)",
                    Some(HostPlan::Clone) => "clone",
                    Some(HostPlan::KeepReplica) => "keep (replica)",
                    None => "-",
                };
                let version = f
                    .binaries
                    .as_ref()
                    .and_then(|b| b.as_ref().ok())
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "-".into());
                let reach = if matches!(f.reach, Some(Ok(_))) {
                    "yes"
                } else {
                    "no"
                };
                out.push_str(&format!(
                    "{:<12} {:<9} {:<8} {:<26} {}\n",
                    f.name, reach, version, dir, would
                ));
            }
            ctx.ui.data(&out);
        }
    }
    if problems.is_empty() {
        ctx.ui.info("check: no problems found");
        Ok(exit::OK)
    } else {
        Err(Error::Preflight { problems }.into())
    }
}
