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
use std::time::{Duration, Instant};

use crate::cluster::HostPlan;
use crate::db::{quote_ident, quote_literal, Db};
use crate::error::{exit, Error};
use crate::inventory::{Host, Inventory, Secret};
use crate::pg::{self, basebackup, ctl, datadir, scram};
use crate::render::Rendered;
use crate::transport::{LineSink, Stream, Transport};
use crate::wait::{poll_until, Poll, TimedOut};

use super::{
    apply_config, check, install_configs, install_file, restart_settings, run_step, server, start,
    Context,
};

/// `pgrepl init`.
pub async fn run(ctx: &Context<'_>) -> anyhow::Result<u8> {
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
    install_passfile(ctx, tp.as_ref(), p, &password, &note).await?;
    let pdb = ctx.db(tp.as_ref(), p).await?;
    ensure_role(ctx, &pdb, &inv.replication_user, true, &password, &note).await?;
    ensure_role(ctx, &pdb, &inv.rewind_user, false, &password, &note).await?;

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
    verify_streaming(ctx, inv, &[], &|n| tr(n)).await?;
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

/// The 0600 password file (replication and rewind roles) on a host. Every host gets one: any
/// host may become a replica (after a switchover or failover) and must then find its password.
pub async fn install_passfile(
    ctx: &Context<'_>,
    t: &dyn Transport,
    h: &Host,
    password: &Secret,
    note: &(dyn Fn(String) + Sync),
) -> anyhow::Result<()> {
    let inv = &ctx.inv;
    let line = pg::passfile_line(&inv.replication_user, password.expose())
        + &pg::passfile_line(&inv.rewind_user, password.expose());
    if install_file(t, &h.passfile, "0600", &line, "install password file")
        .await?
        .is_some()
    {
        ctx.ui.detail(format!(
            "{}: installed password file {}",
            h.name, h.passfile
        ));
        note(format!("{}: password file", h.name));
    }
    Ok(())
}

/// The functions pg_rewind calls on its source server: all the rewind role may run.
pub const REWIND_FUNCTIONS: &[&str] = &[
    "pg_catalog.pg_ls_dir(text, boolean, boolean)",
    "pg_catalog.pg_stat_file(text, boolean)",
    "pg_catalog.pg_read_binary_file(text)",
    "pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean)",
];

/// A login role pgrepl manages: `LOGIN REPLICATION` (replication) or `LOGIN` (rewind), and
/// nothing more; its password sent only as a SCRAM verifier. Changes nothing when it matches.
async fn ensure_role(
    ctx: &Context<'_>,
    db: &Db,
    user: &str,
    replication: bool,
    password: &Secret,
    note: &(dyn Fn(String) + Sync),
) -> anyhow::Result<()> {
    let p = &ctx.inv.primary().name;
    let (attrs, what) = if replication {
        (
            "LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS",
            "LOGIN REPLICATION",
        )
    } else {
        (
            "LOGIN NOREPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS",
            "LOGIN",
        )
    };
    let fail = |e: anyhow::Error| Error::step(p, "roles", format!("{user}: {e:#}"));
    match db.role(user).await.map_err(fail)? {
        None => {
            let v = scram::verifier(password.expose());
            db.execute(&format!(
                "CREATE ROLE {} {attrs} PASSWORD {}",
                quote_ident(user),
                quote_literal(&v)
            ))
            .await
            .map_err(fail)?;
            ctx.ui.info(format!("{p}: created role {user} ({what})"));
            note(format!("{p}: role {user}"));
        }
        Some(r) => {
            if !r.login || r.replication != replication || r.extra_privileges {
                db.execute(&format!("ALTER ROLE {} {attrs}", quote_ident(user)))
                    .await
                    .map_err(fail)?;
                ctx.ui
                    .info(format!("{p}: reset role {user} to {what} only"));
                note(format!("{p}: role {user} attributes"));
            }
            if !r
                .verifier
                .as_deref()
                .is_some_and(|v| scram::matches(v, password.expose()))
            {
                let v = scram::verifier(password.expose());
                db.execute(&format!(
                    "ALTER ROLE {} PASSWORD {}",
                    quote_ident(user),
                    quote_literal(&v)
                ))
                .await
                .map_err(fail)?;
                ctx.ui.info(format!("{p}: set the password of role {user}"));
                note(format!("{p}: role {user} password"));
            }
        }
    }
    if !replication {
        let missing = db
            .missing_execute(user, REWIND_FUNCTIONS)
            .await
            .map_err(fail)?;
        if !missing.is_empty() {
            db.execute(&format!(
                "GRANT EXECUTE ON FUNCTION {} TO {}",
                missing.join(", "),
                quote_ident(user)
            ))
            .await
            .map_err(fail)?;
            note(format!(
                "{p}: grant EXECUTE on {} to {user}",
                missing.join(", ")
            ));
        }
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
    install_passfile(ctx, t, h, password, note).await?;
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

/// A fresh clone into `<data_dir>.pgrepl-new`, moved into place only when complete: a copy cut
/// short (connection lost, pgrepl interrupted) is never where PostgreSQL would start it, and
/// the next run clears it. The replaced directory is left at `<data_dir>.pgrepl-old`.
pub async fn clone_via_staging(
    ctx: &Context<'_>,
    inv: &Inventory,
    t: &dyn Transport,
    h: &Host,
) -> anyhow::Result<()> {
    let staging = datadir::staging_dir(&h.data_dir);
    let old = datadir::old_dir(&h.data_dir);
    run_step(
        t,
        &datadir::remove_ours(&staging),
        "clear the staging directory",
        None,
    )
    .await?;
    clone(ctx, inv, t, h, &staging).await?;
    // The copy goes into place already marked as a standby.
    install_file(
        t,
        &format!("{staging}/standby.signal"),
        "0600",
        "",
        "write standby.signal",
    )
    .await?;
    run_step(t, &datadir::remove_ours(&old), "clear the old copy", None).await?;
    run_step(
        t,
        &datadir::swap_in(&h.data_dir),
        "swap in the new copy",
        None,
    )
    .await?;
    Ok(())
}

/// `pg_basebackup` on `h`'s host into `into` (its data directory, or a staging directory), from
/// its upstream in `inv`, on its slot, with progress.
pub async fn clone(
    ctx: &Context<'_>,
    inv: &Inventory,
    t: &dyn Transport,
    h: &Host,
    into: &str,
) -> anyhow::Result<()> {
    let up = inv
        .host(h.upstream.as_deref().expect("replica"))
        .expect("validated");
    let cmd = basebackup::clone_cmd(&basebackup::CloneSpec {
        bin_dir: &h.bin_dir,
        data_dir: into,
        upstream_address: &up.address,
        upstream_port: up.port,
        user: &inv.replication_user,
        slot: &h.slot,
        passfile: &h.passfile,
        application_name: &format!("pgrepl_clone_{}", h.slot),
    });
    ctx.ui
        .detail(format!("{}: {}", h.name, cmd.full_argv().join(" ")));
    let progress = Arc::new(
        ctx.ui
            .progress(&h.name, &format!("pg_basebackup from {}", up.name)),
    );
    let p2 = progress.clone();
    let sink: LineSink = Arc::new(move |stream, line| {
        if stream == Stream::Stderr {
            if let Some(p) = basebackup::parse_progress(line) {
                p2.set(p.done_kb * 1024, p.total_kb * 1024);
            }
        }
    });
    let t0 = Instant::now();
    // Killed with its process group if pgrepl exits or the connection drops mid-copy.
    let out = t.run(&cmd.until_disconnect(), Some(sink)).await;
    progress.finish();
    let out = out.map_err(|e| Error::step(&h.name, "pg_basebackup", format!("{e:#}")))?;
    if !out.success() {
        let tail: Vec<String> = out
            .stderr_tail
            .iter()
            .filter(|l| basebackup::parse_progress(l).is_none())
            .cloned()
            .collect();
        return Err(Error::step(&h.name, "pg_basebackup", format!("cloning from {} {}", up.name, out.describe_status()))
            .with_stderr(tail)
            .with_hint(format!(
                "check that {} ({}:{}) accepts replication connections from {} ({}), then re-run pgrepl init -i {}",
                up.name,
                up.address,
                up.port,
                h.name,
                h.address,
                inv.file.display()
            ))
            .into());
    }
    ctx.ui.done(
        &h.name,
        &format!("cloned from {} with pg_basebackup", up.name),
        t0.elapsed(),
    );
    Ok(())
}

/// Polls until each replica in `only` (all replicas of `inv` when empty) is `streaming` in its
/// upstream's `pg_stat_replication` and its slot there is active, or `timeouts.streaming` passes.
pub async fn verify_streaming(
    ctx: &Context<'_>,
    inv: &Inventory,
    only: &[&str],
    tr: &(dyn Fn(&str) -> Arc<dyn Transport> + Sync),
) -> anyhow::Result<()> {
    let wanted: Vec<&Host> = inv
        .replicas()
        .filter(|h| only.is_empty() || only.contains(&h.name.as_str()))
        .collect();
    let mut upstreams: BTreeMap<String, Db> = BTreeMap::new();
    for h in &wanted {
        let up = h.upstream.clone().expect("replica");
        if !upstreams.contains_key(&up) {
            let uh = inv.host(&up).expect("validated");
            upstreams.insert(up.clone(), ctx.db(tr(&up).as_ref(), uh).await?);
        }
    }
    let (upstreams, wanted) = (&upstreams, &wanted);
    let result = poll_until(
        "timeouts.streaming",
        inv.timeouts.streaming,
        Duration::from_millis(200),
        || async move {
            let mut waiting = Vec::new();
            for (up, db) in upstreams {
                let rows = db.replication().await?;
                let slots = db.slots().await?;
                for h in wanted
                    .iter()
                    .filter(|h| h.upstream.as_deref() == Some(up.as_str()))
                {
                    let state = rows
                        .iter()
                        .find(|r| r.application_name == h.name)
                        .map(|r| r.state.as_str());
                    let active = slots.iter().any(|s| s.name == h.slot && s.active);
                    if state != Some("streaming") || !active {
                        waiting.push(format!(
                            "{}: {} in {up}'s pg_stat_replication, slot {} {}",
                            h.name,
                            state
                                .map(|s| format!("state {s}"))
                                .unwrap_or_else(|| "absent".into()),
                            h.slot,
                            if active { "active" } else { "inactive" }
                        ));
                    }
                }
            }
            Ok(if waiting.is_empty() {
                Poll::Ready(())
            } else {
                Poll::Pending(waiting.join("; "))
            })
        },
    )
    .await;
    match result {
        Ok(()) => Ok(()),
        Err(e) => match e.downcast::<TimedOut>() {
            Ok(t) => {
                let first = t.last_seen.split(':').next().unwrap_or("").to_string();
                let h = inv.host(&first).unwrap_or(inv.primary());
                Err(Error::step(&h.name, "verify streaming", t.to_string())
                    .with_hint(format!(
                        "read the server log on {}: tail -n 50 {}; then pgrepl status -i {}",
                        h.name,
                        h.log_file,
                        inv.file.display()
                    ))
                    .into())
            }
            Err(e) => Err(e),
        },
    }
}
