//! The routers in front of the cluster (HAProxy, PgBouncer): bring each in line with the live
//! topology (`apply`: render, install what changed, start what does not run, reload what
//! changed), prove the routes land where they should (`verify`), hold and release writes on
//! PgBouncer's write routes around a change of primary (`pause_writes`, `resume_writes`), and
//! report what each route points at (`observe`, for `status`).
//!
//! pgrepl runs the processes itself on the router's machine, as the OS user, daemonized, pid
//! files under the router's `dir` (not the distribution's service). The argv and parsers are
//! `router`'s; the files are `render`'s; this module decides nothing about policy.

mod observe;
pub mod preflight;
mod stage;
mod verify;

pub use observe::observe;
pub use stage::{stage, switch, Staged};
pub use verify::{pause_writes, resume_writes, verify, verify_as, Login};

use std::sync::Arc;
use std::time::Duration;

use crate::context::Context;
use crate::error::{Error, OnStep};
use crate::inventory::{Inventory, Router, RouterKind};
use crate::router;
use crate::transport::Transport;
use crate::wait::{poll_until, Poll};

use super::exec::{install_file, run_step};

/// Brings every router of `live` in line with it: `live.primary()` is the live primary and
/// `live.replicas()` the live replicas (e.g. from `Inventory::with_primary`). Renders, installs
/// the files that changed (atomically, 0600), starts what does not run and reloads what runs
/// with a changed file (HAProxy's configuration validated first). Returns the changes made.
pub async fn apply(ctx: &Context<'_>, live: &Inventory) -> Result<Vec<String>, Error> {
    if live.routers.is_empty() {
        return Ok(Vec::new());
    }
    // PgBouncer's own files beside its configuration: the auth file, and the CAs it verifies
    // the servers' certificates with (TLS on).
    let mut extra = Vec::new();
    if live.routers.iter().any(|r| r.kind == RouterKind::Pgbouncer) {
        extra.push(crate::render::RouterFile {
            name: crate::render::USERLIST.into(),
            content: auth_file(ctx, live).await?,
        });
        if let Some(certs) = crate::steps::tls::ca::load(live, false)? {
            extra.push(crate::render::RouterFile {
                name: crate::render::ROUTER_CA.into(),
                content: certs.bundle().to_string(),
            });
        }
    }
    // PgBouncer cannot health-check: its read list holds the replicas that run now (the
    // primary when none does). HAProxy lists them all and checks them itself.
    let up = answering(ctx, live).await;
    let mut changes = Vec::new();
    for r in &live.routers {
        let from = if r.kind == RouterKind::Pgbouncer {
            &up
        } else {
            live
        };
        changes.extend(apply_one(ctx, from, r, &extra).await?);
    }
    Ok(changes)
}

/// [`verify`] over the hosts that answer now: a read route is expected to reach every
/// replica that runs (one that is down is HAProxy's health check's to skip, and is left out of
/// PgBouncer's host list by [`apply`]).
pub async fn verify_live(ctx: &Context<'_>, live: &Inventory) -> Result<(), Error> {
    if live.routers.is_empty() {
        return Ok(());
    }
    verify(ctx, &answering(ctx, live).await).await
}

/// With routers, the application roles' passwords read (and their files' modes checked) now:
/// the routes are checked by logging in through them, after the command changed the cluster.
///
/// # Errors
/// As `Inventory::role_passwords`.
pub fn check_logins(inv: &Inventory) -> Result<(), Error> {
    if !inv.routers.is_empty() {
        inv.role_passwords()?;
    }
    Ok(())
}

/// [`apply`] then [`verify_live`]: the routers brought in line with the hosts as they run at
/// the end of a command (a replica that came back rejoins PgBouncer's read list), then checked.
pub async fn settle(ctx: &Context<'_>, live: &Inventory) -> Result<Vec<String>, Error> {
    let changes = apply(ctx, live).await?;
    verify_live(ctx, live).await?;
    Ok(changes)
}

/// `destroy` for routers: every router process stopped (SIGTERM, then gone within
/// `timeouts.start`) and every file pgrepl put under its `dir` removed (the directory too when
/// that leaves it empty). Returns what was done, one line per router.
pub async fn teardown(ctx: &Context<'_>, inv: &Inventory) -> Result<Vec<String>, Error> {
    let mut done = Vec::new();
    for r in &inv.routers {
        let t = ctx.kept_router(r).await.on_step(&r.name, "connect")?;
        let mut stopped = Vec::new();
        for (what, _, pidfile) in router::processes(r) {
            if let Some(pid) = running(t.as_ref(), r, &pidfile).await? {
                run_step(
                    t.as_ref(),
                    &router::stop(pid),
                    &format!("stop {what}"),
                    None,
                )
                .await?;
                let step = format!("stop {what}");
                poll_until(
                    "timeouts.start",
                    ctx.inv.timeouts.start,
                    Duration::from_millis(100),
                    || {
                        let (t, pidfile) = (t.clone(), pidfile.clone());
                        async move {
                            match running(t.as_ref(), r, &pidfile).await {
                                Ok(None) => Ok(Poll::Ready(())),
                                Ok(Some(p)) => Ok(Poll::Pending(format!("pid {p} still runs"))),
                                Err(e) => Err(anyhow::anyhow!("{e}")),
                            }
                        }
                    },
                )
                .await
                .map_err(|e| Error::step(&r.name, &step, e.to_string()))?;
                stopped.push(what);
            }
        }
        let (files, dirs) = router::owned_paths(r);
        run_step(
            t.as_ref(),
            &router::remove_files(&files),
            "remove the router's files",
            None,
        )
        .await?;
        run_step(
            t.as_ref(),
            &router::remove_dirs(&dirs),
            "remove the router's directory",
            None,
        )
        .await?;
        let stopped = if stopped.is_empty() {
            "nothing ran".to_string()
        } else {
            format!("stopped {}", stopped.join(", "))
        };
        done.push(format!(
            "{}: {stopped}, removed its files under {}",
            r.name, r.dir
        ));
    }
    Ok(done)
}

/// `live` without the replicas whose server does not answer now (the primary always stays).
pub async fn answering(ctx: &Context<'_>, live: &Inventory) -> Inventory {
    let probes = super::probe::probe_all(
        ctx,
        crate::context::Login::Superuser,
        ctx.inv.timeouts.status,
    )
    .await;
    let answered: Vec<&str> = ctx
        .inv
        .hosts
        .iter()
        .zip(&probes)
        .filter(|(_, p)| p.state.is_ok())
        .map(|(h, _)| h.name.as_str())
        .collect();
    let mut up = live.clone();
    up.hosts.retain(|h| {
        h.role == crate::inventory::Role::Primary || answered.contains(&h.name.as_str())
    });
    up
}

/// PgBouncer's auth file: the SCRAM verifiers of the application roles and the replication
/// user (the console's admin), read from the live primary's `pg_authid`.
async fn auth_file(ctx: &Context<'_>, live: &Inventory) -> Result<String, Error> {
    let p = live.primary();
    let step = "read SCRAM verifiers";
    let mut roles: Vec<String> = live.roles.iter().map(|r| r.name.clone()).collect();
    roles.push(live.replication_user.clone());
    let found = ctx
        .session(p, step)
        .await?
        .verifiers(&roles)
        .await
        .on_step(&p.name, step)?;
    if let Some(missing) = roles.iter().find(|r| !found.iter().any(|(f, _)| f == *r)) {
        return Err(Error::step(
            &p.name,
            step,
            format!("role {missing} has no password on the primary: PgBouncer could not log it in"),
        ));
    }
    crate::render::userlist(&found).on_step(&p.name, step)
}

/// One router: files, then each of its processes started or reloaded.
async fn apply_one(
    ctx: &Context<'_>,
    live: &Inventory,
    r: &Router,
    extra: &[crate::render::RouterFile],
) -> Result<Vec<String>, Error> {
    let t = ctx.kept_router(r).await.on_step(&r.name, "connect")?;
    run_step(
        t.as_ref(),
        &router::make_dirs(r),
        "create the router's directory",
        None,
    )
    .await?;
    let mut files = ctx
        .renderer
        .render_router(live, r)
        .on_step(&r.name, "render")?;
    if r.kind == RouterKind::Pgbouncer {
        files.extend(extra.iter().cloned());
    }
    let mut changes = Vec::new();
    for f in &files {
        let path = format!("{}/{}", r.dir, f.name);
        if install_file(
            t.as_ref(),
            &path,
            "0600",
            &f.content,
            &format!("install {}", f.name),
        )
        .await?
        .is_some()
        {
            changes.push(format!("{}: installed {path}", r.name));
        }
    }
    let changed = !changes.is_empty();
    for (what, cfg, pidfile) in router::processes(r) {
        if let Some(c) = start_or_reload(ctx, &t, r, (&what, &cfg, &pidfile), changed).await? {
            changes.push(c);
        }
    }
    for c in &changes {
        ctx.ui.detail(c);
    }
    Ok(changes)
}

/// Starts a process that does not run; reloads a running one when its files `changed`.
async fn start_or_reload(
    ctx: &Context<'_>,
    t: &Arc<dyn Transport>,
    r: &Router,
    (what, cfg, pidfile): (&str, &str, &str),
    changed: bool,
) -> Result<Option<String>, Error> {
    let pid = running(t.as_ref(), r, pidfile).await?;
    if pid.is_some() && !changed {
        return Ok(None);
    }
    if r.kind == RouterKind::Haproxy {
        run_step(
            t.as_ref(),
            &router::haproxy_check(r, cfg),
            "check haproxy.cfg",
            None,
        )
        .await?;
    }
    let t0 = std::time::Instant::now();
    match pid {
        Some(pid) => {
            let step = format!("reload {what}");
            run_step(t.as_ref(), &router::reload(r.kind, pid), &step, None).await?;
            ctx.ui
                .done(&r.name, &format!("reloaded {what}"), t0.elapsed());
            Ok(Some(format!("{}: reloaded {what}", r.name)))
        }
        None => {
            let cmd = match r.kind {
                RouterKind::Haproxy => router::haproxy_start(r, cfg, pidfile),
                RouterKind::Pgbouncer => router::pgbouncer_start(r, cfg),
            };
            let step = format!("start {what}");
            run_step(t.as_ref(), &cmd, &step, None).await?;
            wait_running(ctx, t.as_ref(), r, pidfile, &step).await?;
            ctx.ui
                .done(&r.name, &format!("started {what}"), t0.elapsed());
            Ok(Some(format!("{}: started {what}", r.name)))
        }
    }
}

/// The pid of the router's process named in `pidfile`, when it runs.
pub(super) async fn running(
    t: &dyn Transport,
    r: &Router,
    pidfile: &str,
) -> Result<Option<u32>, Error> {
    let out = run_step(t, &router::pid_probe(pidfile), "read pid file", None).await?;
    Ok(router::running_pid(r.kind, &out.stdout))
}

/// Polls the pid file until its process runs (`timeouts.start`).
async fn wait_running(
    ctx: &Context<'_>,
    t: &dyn Transport,
    r: &Router,
    pidfile: &str,
    step: &str,
) -> Result<u32, Error> {
    poll_until(
        "timeouts.start",
        ctx.inv.timeouts.start,
        Duration::from_millis(100),
        || async {
            let out = t.run(&router::pid_probe(pidfile), None).await?;
            Ok(match router::running_pid(r.kind, &out.stdout) {
                Some(pid) => Poll::Ready(pid),
                None => Poll::Pending(format!("no running process in {pidfile}")),
            })
        },
    )
    .await
    .map_err(|e| Error::step(&r.name, step, e.to_string()))
}
