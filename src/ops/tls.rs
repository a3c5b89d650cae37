//! `pgrepl tls renew [--ca] [--host H]`: new server (and client) certificates on every host
//! (or one), each server reloaded: a reload keeps every open connection, so no replica loses
//! its stream, and new connections get the new certificate. With `--ca` a new cluster CA
//! first: every host is given a bundle trusting both CAs (and reloaded) before any certificate
//! of the new one is installed, so a replica can reconnect at every moment. With the user's own
//! certificates (`tls.certificates`), renew installs the files as they are now.
//!
//! After the reloads, each host logs in to itself over TLS as a replica would (verify-full),
//! and every replica is verified streaming.

use std::sync::Arc;
use std::time::Instant;

use crate::error::{exit, Error, OnStep};
use crate::inventory::{Host, Tls};
use crate::steps::server::is_running;
use crate::steps::tls::{self, ca};
use crate::transport::Transport;

use super::documents::{RenewedHost, TlsRenewDocument};
use super::Context;

/// What `tls renew` was asked for.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--ca`: a new cluster CA first (pgrepl's own CA only).
    pub ca: bool,
    /// `--host`: only this host's certificates.
    pub host: Option<String>,
}

/// `pgrepl tls renew`.
pub async fn run(ctx: &Context<'_>, o: Options) -> Result<u8, Error> {
    let t0 = Instant::now();
    let inv = &ctx.inv;
    let issued = preflight(ctx, &o)?;
    let hosts: Vec<&Host> = match &o.host {
        Some(n) => vec![ctx.host_named(n)?],
        None => inv.hosts.iter().collect(),
    };
    // The CA must be there (and usable) before anything is contacted.
    ca::load(inv, false)?;
    ctx.lock("tls renew").await?;
    let reached = reach(ctx, &hosts).await?;
    if ctx.dry_run {
        return Ok(super::dry_run(ctx, "tls renew", &plan(ctx, &o, &hosts)));
    }
    if let (true, Some(i)) = (o.ca, issued) {
        trust_new_ca(ctx, i).await?;
    }
    let certs = ca::load(inv, false)?.expect("TLS is on");
    let mut out = Vec::new();
    for (h, t) in &reached {
        out.push(renew_host(ctx, h, t.as_ref(), &certs, t0).await?);
    }
    crate::steps::streaming::verify_streaming(ctx, inv, &[]).await?;
    ctx.result(&TlsRenewDocument {
        cluster: inv.cluster.clone(),
        ca_renewed: o.ca,
        hosts: out,
        seconds: t0.elapsed().as_secs_f64(),
    });
    Ok(exit::OK)
}

/// Every host's connection, or a refusal naming each one that cannot be reached.
async fn reach<'h>(
    ctx: &Context<'_>,
    hosts: &[&'h Host],
) -> Result<Vec<(&'h Host, Arc<dyn Transport>)>, Error> {
    let mut reached = Vec::new();
    let mut problems = Vec::new();
    for h in hosts {
        match ctx.kept(h).await {
            Ok(t) => reached.push((*h, t)),
            Err(e) => problems.push(crate::error::Problem::new(
                &h.name,
                "connect",
                format!("{e:#}"),
                format!("bring {} back, or renew the others with --host", h.name),
            )),
        }
    }
    if problems.is_empty() {
        Ok(reached)
    } else {
        Err(Error::Preflight { problems })
    }
}

/// What a run would do, one line per step (`--dry-run`).
fn plan(ctx: &Context<'_>, o: &Options, hosts: &[&Host]) -> Vec<String> {
    let mut steps = Vec::new();
    if o.ca {
        steps.push("create a new cluster CA; keep the current one trusted beside it".to_string());
        steps.push("every host: CA bundle with both CAs, reload".into());
    }
    for h in hosts {
        steps.push(format!(
            "{}: new certificates ({}), reload, verify a TLS login",
            h.name,
            ctx.inv.cert_names(h).join(", ")
        ));
    }
    steps
}

/// `--ca`: a new CA, and every host trusting it beside the previous one (reloaded) before any
/// certificate of the new CA is installed.
async fn trust_new_ca(ctx: &Context<'_>, i: &crate::inventory::IssuedTls) -> Result<(), Error> {
    let inv = &ctx.inv;
    // A change of CA that did not finish (some host still has a certificate of the previous
    // CA) is finished, not begun again: that would drop the CA those certificates need.
    let current = ca::load(inv, false)?.expect("TLS is on");
    let ca_pem = current
        .ca_pem()
        .expect("--ca only with pgrepl's own CA (preflight)");
    let mut finished = true;
    for h in &inv.hosts {
        let t = ctx.kept(h).await.on_step(&h.name, "read certificate")?;
        finished &= tls::signed_by(t.as_ref(), h, ca_pem).await;
    }
    if finished {
        ca::rotate(inv, i)?;
    } else {
        ctx.ui.info("tls renew: finishing the change of CA begun earlier (some hosts still use the previous CA's certificates)");
    }
    let certs = ca::load(inv, false)?.expect("TLS is on");
    for h in &inv.hosts {
        let t = ctx.kept(h).await.on_step(&h.name, "install TLS files")?;
        if tls::install_bundle(t.as_ref(), h, certs.bundle()).await? {
            reload(ctx, t.as_ref(), h).await?;
        }
    }
    ctx.ui
        .info("tls renew: every host trusts the new CA beside the previous one");
    Ok(())
}

/// One host: new certificates (the user's files as they are now), a reload, a TLS login.
async fn renew_host(
    ctx: &Context<'_>,
    h: &Host,
    t: &dyn Transport,
    certs: &ca::Certs,
    t0: Instant,
) -> Result<RenewedHost, Error> {
    let inv = &ctx.inv;
    let renew = matches!(inv.tls, Tls::Issued(_));
    let changes = tls::install(ctx, inv, t, h, certs, renew).await?;
    let mut negotiated = None;
    if is_running(t, h).await? {
        reload(ctx, t, h).await?;
        negotiated = Some(tls::verify_login(inv, t, h, h).await?);
        if tls::serves_its_file(t, h)
            .await
            .on_step(&h.name, "verify the certificate served")?
            == Some(false)
        {
            return Err(Error::step(&h.name, "verify the certificate served", "the server still presents its previous certificate: its TLS settings did not reload").with_hint(format!(
                "read why in its log (grep -i ssl {}), correct it, then pgrepl tls renew -i {}",
                h.log_file,
                inv.file.display()
            )));
        }
    }
    let not_after = tls::server_cert(t, h)
        .await
        .on_step(&h.name, "read certificate")?
        .map(|c| c.not_after);
    ctx.ui.done(
        &h.name,
        &format!(
            "{} change(s); TLS login: {}",
            changes.len(),
            negotiated
                .as_deref()
                .unwrap_or("server stopped, not checked")
        ),
        t0.elapsed(),
    );
    Ok(RenewedHost {
        host: h.name.clone(),
        changes,
        not_after: not_after.map(tls::rfc3339),
        tls: negotiated,
    })
}

/// The pure checks: TLS on, `--ca` only for pgrepl's own CA, `--host` a host.
fn preflight<'i>(
    ctx: &'i Context<'_>,
    o: &Options,
) -> Result<Option<&'i crate::inventory::IssuedTls>, Error> {
    let inv = &ctx.inv;
    let file = inv.file.display();
    match &inv.tls {
        Tls::Off => Err(Error::refused(
            "cluster",
            "tls",
            "TLS is off (tls: off in the inventory): there is nothing to renew".into(),
            format!("remove `tls: off` from {file}, then pgrepl init -i {file}"),
        )),
        Tls::Provided(_) if o.ca => Err(Error::refused(
            "cluster",
            "tls",
            "the CA is yours (tls.ca_file): pgrepl cannot create a new one".into(),
            format!(
                "put the new CA beside the old one in tls.ca_file, then pgrepl tls renew -i {file}"
            ),
        )),
        _ if o.ca && o.host.is_some() => Err(Error::refused(
            "cluster",
            "tls",
            "--ca renews every host's certificate: it cannot be limited to one host".into(),
            format!("pgrepl tls renew --ca -i {file}"),
        )),
        Tls::Provided(_) => Ok(None),
        Tls::Issued(i) => Ok(Some(i)),
    }
}

async fn reload(
    ctx: &Context<'_>,
    t: &dyn crate::transport::Transport,
    h: &Host,
) -> Result<(), Error> {
    if !is_running(t, h).await? {
        return Ok(());
    }
    ctx.db(t, h)
        .await
        .on_step(&h.name, "reload")?
        .reload()
        .await
        .on_step(&h.name, "reload")
}
