//! `pgrepl init`: build the cluster the inventory describes, or converge it when it exists.
//!
//! Failure semantics: every precondition is checked on every host before the first change
//! (exit 4, nothing changed). A failure after that leaves each host in a state a re-run of
//! `init` continues from: an initdb'd primary, a replica whose clone failed (pg_basebackup
//! removes its partial copy), a replica not yet streaming. Nothing is ever overwritten.
//!
//! Order: primary (initdb, configs, start) → replication role → per wave of replicas (a wave's
//! upstreams are all running): slots on the upstreams, then clones in parallel → verify that
//! every replica streams and every slot is active, against `timeouts.streaming`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::cluster::HostPlan;
use crate::error::{exit, Error, OnStep};
use crate::inventory::{Host, Secret};
use crate::pg::{ctl, datadir};
use crate::render::Rendered;
use crate::steps::clone::clone_via_staging;
use crate::steps::config::{apply_config, install_configs, install_passfile, restart_settings};
use crate::steps::exec::run_step;
use crate::steps::roles::ensure_role;
use crate::steps::server::{server, start};
use crate::steps::streaming::verify_streaming;
use crate::transport::Transport;

use super::{check, Context};

/// `pgrepl init`.
pub async fn run(ctx: &Context<'_>) -> Result<u8, Error> {
    let inv = &ctx.inv;
    // The password is read (and its file's mode checked) before anything is contacted.
    let password = inv.replication_password()?;
    let t_all = Instant::now();
    ctx.lock("init").await?;

    let transports = ctx.connect_all().await;
    let (facts, plan) = check::preflight(ctx, &transports).await?;
    let tr = |name: &str| -> Arc<dyn Transport> {
        transports[name]
            .as_ref()
            .expect("preflight: every host reachable")
            .clone()
    };
    let running: BTreeMap<&str, bool> =
        facts.iter().map(|f| (f.name.as_str(), f.running)).collect();
    let mut rendered = BTreeMap::new();
    for h in &inv.hosts {
        rendered.insert(h.name.clone(), ctx.rendered(h)?);
    }

    // Restarts are disruptive: ask first (or refuse without a terminal and --yes).
    let mut restarts: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for h in &inv.hosts {
        if running[h.name.as_str()] {
            let s = restart_settings(ctx, tr(&h.name).as_ref(), h, &rendered[&h.name]).await?;
            if !s.is_empty() {
                restarts.insert(h.name.clone(), s);
            }
        }
    }
    if !restarts.is_empty() {
        let what = restarts
            .iter()
            .map(|(h, s)| format!("{h} ({})", s.join(", ")))
            .collect::<Vec<_>>()
            .join("; ");
        ctx.ui.confirm(
            "init",
            &format!("restart running servers whose restart-only settings changed: {what}"),
        )?;
    }

    let changes = Mutex::new(Vec::<String>::new());
    let note = |c: String| changes.lock().expect("not poisoned").push(c);

    // 1. The primary.
    let p = inv.primary();
    let tp = tr(&p.name);
    if plan[&p.name] == HostPlan::Initdb {
        let t0 = Instant::now();
        run_step(
            tp.as_ref(),
            &ctl::initdb(&server(p), &inv.os_user, &inv.locale, "UTF8"),
            "initdb",
            None,
        )
        .await?;
        ctx.ui
            .done(&p.name, "initdb (data checksums on)", t0.elapsed());
        note(format!("{}: initdb", p.name));
    }
    converge_server(
        ctx,
        tp.as_ref(),
        p,
        &rendered[&p.name],
        running[p.name.as_str()] && plan[&p.name] != HostPlan::Initdb,
        restarts.contains_key(&p.name),
        &note,
    )
    .await?;
    if install_passfile(ctx, tp.as_ref(), p, &password).await? {
        note(format!("{}: password file", p.name));
    }
    let pdb = ctx.db(tp.as_ref(), p).await.on_step(&p.name, "roles")?;
    for (user, replication) in [(&inv.replication_user, true), (&inv.rewind_user, false)] {
        for c in ensure_role(ctx, &pdb, &p.name, user, replication, &password).await? {
            note(c);
        }
    }

    // 2. Replicas, wave by wave.
    for wave in inv.replica_waves() {
        for up_name in wave
            .iter()
            .filter_map(|h| h.upstream.as_deref())
            .collect::<std::collections::BTreeSet<_>>()
        {
            let up = inv.host(up_name).expect("validated upstream");
            let db = ctx.db(tr(up_name).as_ref(), up).await?;
            let existing: Vec<String> = db.slots().await?.into_iter().map(|s| s.name).collect();
            for h in wave
                .iter()
                .filter(|h| h.upstream.as_deref() == Some(up_name))
            {
                if !existing.contains(&h.slot) {
                    db.create_physical_slot(&h.slot).await.map_err(|e| {
                        Error::step(
                            up_name,
                            "create replication slot",
                            format!("slot {}: {e:#}", h.slot),
                        )
                    })?;
                    ctx.ui.info(format!(
                        "{up_name}: created physical replication slot {} for {}",
                        h.slot, h.name
                    ));
                    note(format!("{up_name}: slot {}", h.slot));
                }
                if plan[&h.name] == HostPlan::Clone {
                    // Dropped again if this run fails or is interrupted before the clone is done.
                    ctx.slot_pending(up_name, &h.slot);
                }
            }
        }
        let jobs = wave.iter().map(|h| {
            let t = tr(&h.name);
            let note = &note;
            let password = &password;
            let rendered = &rendered;
            let plan = &plan;
            let running = &running;
            let restarts = &restarts;
            async move {
                converge_replica(
                    ctx,
                    t.as_ref(),
                    h,
                    plan[&h.name],
                    &rendered[&h.name],
                    password,
                    running[h.name.as_str()],
                    restarts.contains_key(&h.name),
                    note,
                )
                .await
            }
        });
        for r in futures_util::future::join_all(jobs).await {
            r?;
        }
    }

    // 3. Verify against PostgreSQL itself.
    let t0 = Instant::now();
    verify_streaming(ctx, inv, &[]).await?;
    ctx.ui.done(
        &p.name,
        &format!(
            "{} replica(s) streaming, every slot active",
            inv.replicas().count()
        ),
        t0.elapsed(),
    );

    let changes = changes.into_inner().expect("not poisoned");
    if changes.is_empty() {
        ctx.ui.info(format!(
            "init: no changes; cluster {} already matches the inventory ({:.1}s)",
            inv.cluster,
            t_all.elapsed().as_secs_f64()
        ));
    } else {
        ctx.ui.info(format!(
            "init: cluster {} is up, {} change(s) in {:.1}s",
            inv.cluster,
            changes.len(),
            t_all.elapsed().as_secs_f64()
        ));
    }
    Ok(exit::OK)
}

/// Installs the configuration files, then starts the server or applies the change to it.
async fn converge_server(
    ctx: &Context<'_>,
    t: &dyn Transport,
    h: &Host,
    r: &Rendered,
    running: bool,
    restart: bool,
    note: &(dyn Fn(String) + Sync),
) -> anyhow::Result<()> {
    run_step(
        t,
        &datadir::ensure_dir(&h.socket_dir, "2775"),
        "create socket directory",
        None,
    )
    .await?;
    let ch = install_configs(t, h, r).await?;
    if !ch.files.is_empty() {
        ctx.ui
            .detail(format!("{}: installed {}", h.name, ch.files.join(", ")));
        note(format!("{}: {}", h.name, ch.files.join(", ")));
    }
    if running {
        if let Some(what) = apply_config(ctx, t, h, &ch, restart).await? {
            note(format!("{}: {what}", h.name));
        }
    } else {
        start(ctx, t, h).await?;
        note(format!("{}: started", h.name));
    }
    Ok(())
}

/// One replica: its password file, then a clone (new) or a configuration check (existing).
#[allow(clippy::too_many_arguments)]
async fn converge_replica(
    ctx: &Context<'_>,
    t: &dyn Transport,
    h: &Host,
    plan: HostPlan,
    r: &Rendered,
    password: &Secret,
    running: bool,
    restart: bool,
    note: &(dyn Fn(String) + Sync),
) -> anyhow::Result<()> {
    let inv = &ctx.inv;
    if install_passfile(ctx, t, h, password).await? {
        note(format!("{}: password file", h.name));
    }
    if plan == HostPlan::Clone {
        clone_via_staging(ctx, inv, t, h).await?;
        // The data directory was blank: the moved-aside copy is an empty directory.
        run_step(
            t,
            &datadir::remove_ours(&datadir::old_dir(&h.data_dir)),
            "remove the empty directory",
            None,
        )
        .await?;
        ctx.slot_kept(&h.slot);
        note(format!("{}: cloned", h.name));
    }
    converge_server(
        ctx,
        t,
        h,
        r,
        running && plan == HostPlan::KeepReplica,
        restart,
        note,
    )
    .await
}
