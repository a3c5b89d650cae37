//! Proof that the routes land where the live topology says: through each write route a login
//! lands on the primary and may write (`txid_current()` fails on a standby); through each read
//! route every read target is reached. Polled against `timeouts.promote`. Also PgBouncer's
//! console: PAUSE and RESUME of the write routes around a change of primary, bounded so that a
//! PAUSE waiting on a long transaction cannot hang pgrepl.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::context::Context;
use crate::db::{connect_tcp, Db};
use crate::error::{Error, OnStep};
use crate::inventory::{Inventory, Router, RouterKind, Secret};
use crate::render::{routes, targets, Route};
use crate::wait::{poll_until, Poll};

/// Who logs in through the routes to check them.
#[derive(Debug, Clone)]
pub struct Login {
    /// The role (the first of `roles[]`).
    pub user: String,
    /// Its password.
    pub password: Secret,
    /// The database (the first a router serves).
    pub database: String,
}

/// [`verify_as`] the first application role (`roles[]`) on the first database (an inventory
/// with routers declares one: checked at load).
pub async fn verify(ctx: &Context<'_>, live: &Inventory) -> Result<(), Error> {
    if live.routers.is_empty() {
        return Ok(());
    }
    let role = live
        .roles
        .first()
        .expect("validated: an inventory with routers declares a role");
    let database = live
        .databases
        .first()
        .map(|d| d.name.clone())
        .unwrap_or_else(|| "postgres".into());
    let login = Login {
        user: role.name.clone(),
        password: live.role_password(role)?,
        database,
    };
    verify_as(ctx, live, &login).await
}

/// Every route of every router lands where `live` says, within `timeouts.promote`.
pub async fn verify_as(ctx: &Context<'_>, live: &Inventory, login: &Login) -> Result<(), Error> {
    for r in &live.routers {
        for (route, port) in routes(r) {
            let t0 = std::time::Instant::now();
            let want: BTreeSet<String> = targets(live, r, route)
                .iter()
                .map(|h| h.name.clone())
                .collect();
            let step = format!("verify the {} route (port {port})", route.as_str());
            let seen = std::sync::Mutex::new(BTreeSet::new());
            poll_until(
                "timeouts.promote",
                ctx.inv.timeouts.promote,
                Duration::from_millis(250),
                || {
                    let (want, seen) = (&want, &seen);
                    async move { probe_route(ctx, r, (route, port), login, want, seen).await }
                },
            )
            .await
            .map_err(|e| Error::step(&r.name, &step, e.to_string()))?;
            ctx.ui.done(
                &r.name,
                &format!(
                    "{} route reaches {}",
                    route.as_str(),
                    want.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
                t0.elapsed(),
            );
        }
    }
    Ok(())
}

/// One round: for writes, one login landing on the primary and writing; for reads, twice as
/// many concurrent logins as targets, adding where each landed to `seen`.
async fn probe_route(
    ctx: &Context<'_>,
    r: &Router,
    (route, port): (Route, u16),
    login: &Login,
    want: &BTreeSet<String>,
    seen: &std::sync::Mutex<BTreeSet<String>>,
) -> anyhow::Result<Poll<()>> {
    let n = if route == Route::Write {
        1
    } else {
        2 * want.len()
    };
    let timeout = ctx.inv.timeouts.connect;
    let tries = (0..n).map(|_| async move {
        let db = connect_tcp(
            &r.name,
            (&r.address, port),
            (&login.user, login.password.expose()),
            &login.database,
            timeout,
        )
        .await?;
        db.landing(route == Route::Write).await
    });
    let mut last = String::new();
    for res in futures_util::future::join_all(tries).await {
        match res {
            Ok(l) if route == Route::Write && (l.in_recovery || !want.contains(&l.host)) => {
                last = format!("landed on {} (in recovery: {})", l.host, l.in_recovery);
            }
            Ok(l) => {
                seen.lock().expect("not poisoned").insert(l.host);
            }
            Err(e) => last = format!("{e:#}"),
        }
    }
    let seen = seen.lock().expect("not poisoned").clone();
    if want.is_subset(&seen) {
        return Ok(Poll::Ready(()));
    }
    let seen_list = seen.iter().cloned().collect::<Vec<_>>().join(", ");
    Ok(Poll::Pending(format!(
        "reached [{seen_list}] of [{}]; {last}",
        want.iter().cloned().collect::<Vec<_>>().join(", ")
    )))
}

/// PgBouncer's console on `port` as the replication user (its admin).
pub(super) async fn console(
    ctx: &Context<'_>,
    r: &Router,
    port: u16,
    password: &Secret,
) -> anyhow::Result<Db> {
    connect_tcp(
        &r.name,
        (&r.address, port),
        (&ctx.inv.replication_user, password.expose()),
        "pgbouncer",
        ctx.inv.timeouts.connect,
    )
    .await
}

/// PAUSE on every PgBouncer write route: running transactions finish, new ones queue. Bounded
/// by `timeouts.promote`: past it the routes already paused are resumed and the step fails.
/// Returns the routers paused.
pub async fn pause_writes(ctx: &Context<'_>, live: &Inventory) -> Result<Vec<String>, Error> {
    let password = ctx.inv.replication_password()?;
    let mut paused = Vec::new();
    for r in live
        .routers
        .iter()
        .filter(|r| r.kind == RouterKind::Pgbouncer)
    {
        let port = r.ports.write;
        let res = async {
            let db = console(ctx, r, port, &password).await?;
            tokio::time::timeout(ctx.inv.timeouts.promote, db.simple_rows("PAUSE"))
                .await
                .map_err(|_| anyhow::anyhow!("PAUSE did not end within {}s (timeouts.promote): a transaction is still running", ctx.inv.timeouts.promote.as_secs()))??;
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = res {
            // A PAUSE cut short leaves the pooler pausing: resume it, and those done before.
            paused.push(r.name.clone());
            let _ = resume_named(ctx, live, &paused, &password).await;
            return Err(Error::step(&r.name, "pause writes", format!("{e:#}")));
        }
        paused.push(r.name.clone());
        // From here an interrupted run resumes them (`steps::undo`).
        ctx.writes_paused(true);
    }
    Ok(paused)
}

/// RESUME on every PgBouncer write route (one not paused is fine).
pub async fn resume_writes(ctx: &Context<'_>, live: &Inventory) -> Result<(), Error> {
    let password = ctx.inv.replication_password()?;
    let names: Vec<String> = live
        .routers
        .iter()
        .filter(|r| r.kind == RouterKind::Pgbouncer)
        .map(|r| r.name.clone())
        .collect();
    resume_named(ctx, live, &names, &password).await?;
    ctx.writes_paused(false);
    Ok(())
}

async fn resume_named(
    ctx: &Context<'_>,
    live: &Inventory,
    names: &[String],
    password: &Secret,
) -> Result<(), Error> {
    for r in live.routers.iter().filter(|r| names.contains(&r.name)) {
        let db = console(ctx, r, r.ports.write, password)
            .await
            .on_step(&r.name, "resume writes")?;
        match db.simple_rows("RESUME").await {
            Ok(_) => {}
            Err(e) if format!("{e:#}").contains("not paused") => {}
            Err(e) => return Err(e).on_step(&r.name, "resume writes"),
        }
    }
    Ok(())
}
