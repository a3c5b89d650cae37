//! What `init` (and `check`) needs of each router's machine before anything changes: its
//! `dir` creatable or writable by the OS user, and its route ports free unless pgrepl's own
//! router process already holds them. One fixed probe per router (`router::preflight_probe`).

use crate::context::Context;
use crate::error::Problem;
use crate::inventory::{Inventory, Router};
use crate::pg::hostdirs::collides;
use crate::router;

/// Every problem of every router, as preflight problems (exit 4 before any change).
pub async fn problems(ctx: &Context<'_>, inv: &Inventory) -> Vec<Problem> {
    let mut out = Vec::new();
    for r in &inv.routers {
        out.extend(one(ctx, inv, r).await);
    }
    out
}

async fn one(ctx: &Context<'_>, inv: &Inventory, r: &Router) -> Vec<Problem> {
    let unreachable = |why: String| {
        vec![Problem::new(
            &r.name,
            "reachable",
            format!("{} cannot be reached: {why}", r.name),
            format!("check ssh to {} (port {})", r.ssh_host, r.ssh_port),
        )]
    };
    let t = match ctx.kept_router(r).await {
        Ok(t) => t,
        Err(e) => return unreachable(format!("{e:#}")),
    };
    let out = match t.run(&router::preflight_probe(r), None).await {
        Ok(o) if o.success() => o.stdout,
        Ok(o) => return unreachable(o.stderr_tail.join(" ")),
        Err(e) => return unreachable(format!("{e:#}")),
    };
    let (dir, listeners) = router::parse_preflight(&out);
    let mut problems = Vec::new();
    if let Some((state, at)) = dir {
        let user = &inv.os_user;
        problems.push(Problem::new(
            &r.name,
            "dir",
            format!(
                "{}'s directory {} is {state} by {user} ({at})",
                r.name, r.dir
            ),
            format!(
                "create it for the OS user: install -d -o {user} -m 0700 {}",
                r.dir
            ),
        ));
    }
    // pgrepl's own processes hold their ports: only a router that does not run yet is judged.
    let mut ours = false;
    for (_, _, pidfile) in router::processes(r) {
        ours |= matches!(super::running(t.as_ref(), r, &pidfile).await, Ok(Some(_)));
    }
    if !ours {
        for (port, ip) in listeners.iter().filter(|(_, ip)| collides(&r.address, ip)) {
            problems.push(Problem::new(
                &r.name,
                "port",
                format!("port {port} is already in use on {}'s machine (listening on {ip}): {} could not bind {}:{port}", r.name, r.kind.as_str(), r.address),
                format!("find what listens there (ss -ltnp 'sport = :{port}') and stop it, or give {} other ports (routers[].ports in {})", r.name, inv.file.display()),
            ));
        }
    }
    problems
}
