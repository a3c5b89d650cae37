//! `pgrepl init`: build the cluster the inventory describes, or converge it when it exists.
//!
//! Failure semantics: every precondition is checked on every host before the first change
//! (exit 4, nothing changed). A failure after that leaves each host in a state a re-run of
//! `init` continues from: an initdb'd primary, a replica whose clone failed (pg_basebackup
//! removes its partial copy), a replica not yet streaming. Nothing is ever overwritten.
//!
//! Shape: facts gathered on every host (`steps::facts`) → the pure [`preflight`] (problems, or
//! an [`InitPlan`] of named steps) → the restart-only settings of running servers, confirmed →
//! the executor walks the plan. Order: primary (initdb, configs, start) → replication role →
//! per wave of replicas (a wave's upstreams are all running): slots on the upstreams, then
//! clones in parallel → verify that every replica streams and every slot is active, against
//! `timeouts.streaming`.

pub mod check;
mod execute;
mod hostchecks;
pub mod plan;
pub mod preflight;
mod tls;
pub mod warnings;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use crate::error::{exit, Error, OnStep};
use crate::inventory::Inventory;
use crate::render::Rendered;
use crate::steps::config::restart_settings;
use crate::steps::facts::{gather, HostFacts};
use crate::steps::hot_standby::too_low;
use crate::steps::record::keep_inventory_true;

use self::execute::Executor;
pub use self::plan::{HostPlan, InitPlan, InitStep};
pub use self::preflight::preflight;
pub use self::warnings::warnings;

use super::{Context, Transports};

/// `pgrepl init`: takes the cluster lock, runs preflight (refusals: [`Error::Preflight`],
/// exit 4, nothing changed), asks before restarting running servers (exit 5 without a terminal
/// and `--yes`), then walks the plan. Returns exit 0 when every replica streams; a failed step
/// is an [`Error::Step`] naming the host and the step (exit 1).
pub async fn run(ctx: &Context<'_>) -> Result<u8, Error> {
    let inv = &ctx.inv;
    // The password is read (and its file's mode checked) before anything is contacted.
    let password = inv.replication_password()?;
    let app_passwords = inv.role_passwords()?;
    let t_all = Instant::now();
    ctx.lock("init").await?;

    let transports = ctx.connect_all().await;
    let facts = gather(ctx, &transports, crate::context::Login::Superuser).await;
    let live = live_inventory(ctx, &facts);
    let inv = &live;
    let mut plan = plan_or_refuse(ctx, inv, &facts).await?;
    for w in warnings(inv, &facts) {
        ctx.ui.warn(w.to_string());
    }
    // A synchronous rule makes commits wait for standbys: while this run creates the primary
    // or clones a replica, the files leave it out; it is enabled once every replica streams.
    let defer_sync = inv.synchronous.is_some() && plan.builds();
    // Changing a running cluster's TLS: logins with or without it until every replica follows.
    let tls_moving = tls_moving(inv, &facts);
    let rendered = render_all(ctx, inv, defer_sync, tls_moving)?;
    let new_ca = crate::steps::tls::ca::missing(inv)?;

    // Restarts are disruptive: ask first (or refuse without a terminal and --yes).
    plan.set_restarts(restarts(ctx, &transports, &plan, &rendered, &facts).await?);
    plan.standbys_first(&standbys_first(inv, &transports, &plan, &rendered).await?);
    if ctx.dry_run {
        let steps = dry_run_steps(inv, &plan, new_ca, defer_sync, tls_moving);
        return Ok(super::dry_run(ctx, "init", &steps));
    }
    if let Some(what) = plan.restart_prompt() {
        ctx.ui.confirm("init", &what)?;
    }
    // The first change: the cluster CA, created when it is missing.
    let certs = crate::steps::tls::ca::load(inv, true)?;

    let executor = Executor {
        ctx,
        inv,
        transports: &transports,
        rendered: &rendered,
        password: &password,
        app_passwords: &app_passwords,
        certs: certs.as_ref(),
        changes: Default::default(),
        tls_changed: Default::default(),
    };
    executor.trust_current_ca(&plan.running).await?;
    executor.walk(&plan).await?;
    if defer_sync {
        executor.enable_sync().await?;
    }
    if tls_moving {
        executor.end_tls_change().await?;
    }
    keep_inventory_true(ctx, inv);
    let changes = executor.into_changes();
    summary(ctx, &changes, t_all);
    ctx.result(&super::documents::InitDocument {
        cluster: inv.cluster.clone(),
        primary: inv.primary().name.clone(),
        changes,
        seconds: t_all.elapsed().as_secs_f64(),
    });
    Ok(exit::OK)
}

/// Whether this run changes a running cluster's TLS: TLS is wanted and a server has it off, a
/// WAL sender streams without it, or a standby's `primary_conninfo` lacks `verify-full` (or the
/// client certificate now wanted); or TLS is turned off and a server still has it on.
fn tls_moving(inv: &Inventory, facts: &[HostFacts]) -> bool {
    let running = facts.iter().filter(|f| f.running);
    if !inv.tls.is_on() {
        return running.clone().any(|f| f.ssl_on == Some(true));
    }
    running.into_iter().any(|f| {
        let ci = f.conninfo.as_deref();
        f.tls_plain
            || ci.is_some_and(|c| !c.contains("sslmode=verify-full"))
            || (inv.tls.client_certs() && ci.is_some_and(|c| !c.contains("sslcert=")))
    })
}

/// The inventory to converge: once the cluster exists, the live primary is the primary,
/// whatever the file says.
fn live_inventory(ctx: &Context<'_>, facts: &[HostFacts]) -> Inventory {
    let inv = &ctx.inv;
    match live_primary(inv, facts) {
        Some(p) => {
            ctx.ui.info(format!(
                "init: {p} is the live primary (the inventory says {}): converging the cluster as it is",
                inv.primary().name
            ));
            inv.with_primary(p)
        }
        None => inv.clone(),
    }
}

/// `--dry-run`'s lines: the CA to create, the plan, the deferred steps, the restart question.
fn dry_run_steps(
    inv: &Inventory,
    plan: &InitPlan,
    new_ca: Option<String>,
    defer_sync: bool,
    tls_moving: bool,
) -> Vec<String> {
    let mut steps: Vec<String> = new_ca.into_iter().collect();
    steps.extend(plan.steps.iter().map(|s| s.to_string()));
    if defer_sync {
        steps.push(format!(
            "enable synchronous replication ({}) on every host once every replica streams (reload)",
            inv.sync_names_for(inv.primary())
        ));
    }
    if tls_moving {
        steps.push(
            "once every replica streams over TLS: hostssl lines on every host (reload)".into(),
        );
    }
    steps.extend(plan.restart_prompt());
    steps
}

/// init's preflight over the hosts' facts and the routers' machines: the plan, or every
/// problem at once (exit 4, nothing changed).
async fn plan_or_refuse(
    ctx: &Context<'_>,
    inv: &Inventory,
    facts: &[crate::steps::facts::HostFacts],
) -> Result<InitPlan, Error> {
    let routers = crate::steps::routers::preflight::problems(ctx, inv).await;
    match preflight(inv, facts) {
        Ok(plan) if routers.is_empty() => Ok(plan),
        Ok(_) => Err(Error::Preflight { problems: routers }),
        Err(mut problems) => {
            problems.extend(routers);
            Err(Error::Preflight { problems })
        }
    }
}

/// Every host's files. With `defer_sync` the synchronous rule is left out (this run creates the
/// primary or clones a replica; the rule is enabled once every replica streams); with
/// `tls_moving` the replication lines stay `host` (`enforce_tls` makes them `hostssl`).
fn render_all(
    ctx: &Context<'_>,
    inv: &Inventory,
    defer_sync: bool,
    tls_moving: bool,
) -> Result<BTreeMap<String, crate::render::Rendered>, Error> {
    let mut first = inv.clone();
    if defer_sync {
        first.synchronous = None;
    }
    first.tls_moving = tls_moving;
    let mut rendered = BTreeMap::new();
    for h in &inv.hosts {
        rendered.insert(
            h.name.clone(),
            ctx.renderer.render(&first, h).on_step(&h.name, "render")?,
        );
    }
    Ok(rendered)
}

/// The one host that runs and accepts writes, when it is not the inventory's primary: the
/// cluster exists and an earlier failover or switchover moved the primary (the file was not
/// updated). `None` when the inventory's primary is the live one, or when no single host is.
pub fn live_primary<'f>(inv: &Inventory, facts: &'f [HostFacts]) -> Option<&'f str> {
    let mut writable = facts
        .iter()
        .filter(|f| f.running && f.in_recovery == Some(false));
    match (writable.next(), writable.next()) {
        (Some(f), None) if f.name != inv.primary().name => Some(&f.name),
        _ => None,
    }
}

/// The restart-only settings that installing the rendered files would change on each running
/// server, and those it took from its command line instead of postgresql.conf (host →
/// settings; hosts without any are left out).
async fn restarts(
    ctx: &Context<'_>,
    transports: &Transports,
    plan: &InitPlan,
    rendered: &BTreeMap<String, Rendered>,
    facts: &[HostFacts],
) -> Result<BTreeMap<String, Vec<String>>, Error> {
    let mut restarts = BTreeMap::new();
    for name in &plan.running {
        let h = ctx.host_named(name)?;
        let Some(Ok(t)) = transports.get(name) else {
            return Err(Error::step(name, "connect", "not connected"));
        };
        let mut s = restart_settings(ctx, t.as_ref(), h, &rendered[name]).await?;
        let cmdline = facts.iter().filter(|f| &f.name == name);
        s.extend(cmdline.flat_map(|f| f.from_command_line.iter().cloned()));
        s.sort();
        s.dedup();
        if !s.is_empty() {
            restarts.insert(name.clone(), s);
        }
    }
    Ok(restarts)
}

/// When the primary restarts: the standbys that restart too and can do so before it (their
/// new hot-standby settings are not below what their control files recorded; raising goes
/// standbys first). The others restart after the primary, once they replayed its lower values.
async fn standbys_first(
    inv: &Inventory,
    transports: &Transports,
    plan: &InitPlan,
    rendered: &BTreeMap<String, Rendered>,
) -> Result<BTreeSet<String>, Error> {
    let mut early = BTreeSet::new();
    if !plan.restarts.contains_key(&inv.primary().name) {
        return Ok(early);
    }
    for h in inv
        .replicas()
        .filter(|h| plan.restarts.contains_key(&h.name))
    {
        let Some(Ok(t)) = transports.get(&h.name) else {
            return Err(Error::step(&h.name, "connect", "not connected"));
        };
        if too_low(t.as_ref(), h, &rendered[&h.name]).await?.is_empty() {
            early.insert(h.name.clone());
        }
    }
    Ok(early)
}

/// The last line: what changed, or that nothing had to.
fn summary(ctx: &Context<'_>, changes: &[String], t_all: Instant) {
    let inv = &ctx.inv;
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
}

#[cfg(test)]
mod tests;
