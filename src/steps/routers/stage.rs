//! A change of primary prepared before it happens, so that re-pointing the routers after the
//! promotion costs a rename and a reload: `stage` renders each router's files for the topology
//! to come and writes those that differ beside the current ones (`<file>.next`, HAProxy's
//! checked with `haproxy -c`); `switch` renames them into place and reloads, every router at
//! once (HAProxy: SIGUSR2 to its master; PgBouncer: `RELOAD` on its console, which takes effect
//! before the `RESUME` that follows). A router that does not run is left to `apply`.

use std::sync::Arc;

use crate::context::Context;
use crate::error::{Error, OnStep};
use crate::inventory::{Inventory, Router, RouterKind};
use crate::pg::datadir;
use crate::router;
use crate::transport::{Cmd, Transport};

use super::super::exec::run_step;
use super::verify::console;

/// One router's staged files and the processes that reload them.
struct StagedRouter {
    router: Router,
    transport: Arc<dyn Transport>,
    /// Paths of the files written as `<path>.next`.
    files: Vec<String>,
    /// (what, port of a PgBouncer route or 0, pid) of each process to reload.
    reload: Vec<(String, u16, u32)>,
}

/// Files written beside the current ones, waiting for [`switch`] (empty: nothing staged).
#[derive(Default)]
pub struct Staged(Vec<StagedRouter>);

impl Staged {
    /// Whether anything waits.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Renders every running router for `future` (PgBouncer's from `up`: the replicas that will
/// answer) and writes the files that differ as `<file>.next`.
pub async fn stage(ctx: &Context<'_>, future: &Inventory, up: &Inventory) -> Result<Staged, Error> {
    let mut staged = Vec::new();
    for r in &future.routers {
        let from = if r.kind == RouterKind::Pgbouncer {
            up
        } else {
            future
        };
        if let Some(s) = stage_one(ctx, from, r).await? {
            staged.push(s);
        }
    }
    Ok(Staged(staged))
}

async fn stage_one(
    ctx: &Context<'_>,
    from: &Inventory,
    r: &Router,
) -> Result<Option<StagedRouter>, Error> {
    let t = ctx.kept_router(r).await.on_step(&r.name, "connect")?;
    let files = ctx
        .renderer
        .render_router(from, r)
        .on_step(&r.name, "render")?;
    let mut changed = Vec::new();
    for f in &files {
        let path = format!("{}/{}", r.dir, f.name);
        let cur = run_step(
            t.as_ref(),
            &datadir::read_file_with_mode(&path),
            "read a router file",
            None,
        )
        .await?;
        if datadir::split_mode(&cur.stdout).1 == f.content {
            continue;
        }
        let next = format!("{path}.next");
        let step = format!("stage {}", f.name);
        run_step(
            t.as_ref(),
            &datadir::write_file(&next, "0600", f.content.clone().into_bytes()),
            &step,
            None,
        )
        .await?;
        changed.push(path);
    }
    if changed.is_empty() {
        return Ok(None);
    }
    let Some(reload) = reloads(t.as_ref(), r, &changed).await? else {
        return Ok(None); // a process does not run: `apply` starts it
    };
    Ok(Some(StagedRouter {
        router: r.clone(),
        transport: t,
        files: changed,
        reload,
    }))
}

/// The processes whose configuration is among `changed`: (what, PgBouncer route's port or 0,
/// pid); `None` when one of them does not run. HAProxy's staged file is checked.
async fn reloads(
    t: &dyn Transport,
    r: &Router,
    changed: &[String],
) -> Result<Option<Vec<(String, u16, u32)>>, Error> {
    let mut reload = Vec::new();
    for ((what, cfg, pidfile), (_, port)) in router::processes(r)
        .into_iter()
        .zip(crate::render::routes(r))
    {
        if !changed.contains(&cfg) {
            continue;
        }
        let Some(pid) = super::running(t, r, &pidfile).await? else {
            return Ok(None);
        };
        if r.kind == RouterKind::Haproxy {
            run_step(
                t,
                &router::haproxy_check(r, &format!("{cfg}.next")),
                "check the staged haproxy.cfg",
                None,
            )
            .await?;
        }
        reload.push((
            what,
            if r.kind == RouterKind::Pgbouncer {
                port
            } else {
                0
            },
            pid,
        ));
    }
    Ok(Some(reload))
}

/// Renames every staged file into place and reloads its process, all routers at once.
pub async fn switch(ctx: &Context<'_>, staged: &Staged) -> Result<(), Error> {
    let password = ctx.inv.replication_password()?;
    let each = staged.0.iter().map(|s| {
        let password = &password;
        async move {
            let (r, t) = (&s.router, s.transport.as_ref());
            for path in &s.files {
                let mv = Cmd::new("mv").args(["-f", &format!("{path}.next"), path]);
                run_step(t, &mv, "move the staged file into place", None).await?;
            }
            for (what, port, pid) in &s.reload {
                let step = format!("reload {what}");
                if r.kind == RouterKind::Pgbouncer {
                    let db = console(ctx, r, *port, password)
                        .await
                        .on_step(&r.name, &step)?;
                    db.simple_rows("RELOAD").await.on_step(&r.name, &step)?;
                } else {
                    run_step(t, &router::reload(r.kind, *pid), &step, None).await?;
                }
            }
            Ok::<(), Error>(())
        }
    });
    for r in futures_util::future::join_all(each).await {
        r?;
    }
    Ok(())
}
