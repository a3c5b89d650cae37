//! The last step of an `init` that moved a running cluster to TLS: the replication and rewind
//! lines stayed `host` (TLS or not) while replicas switched their connections to TLS; once
//! every WAL sender streams over TLS, every host gets its `hostssl` lines (a reload). A
//! replica can reconnect at every moment of the move.

use std::time::{Duration, Instant};

use crate::error::{Error, OnStep};
use crate::steps::config::converge_running;
use crate::wait::{poll_until, Poll};

use super::execute::Executor;

impl Executor<'_, '_> {
    /// Before any certificate changes: every running host whose CA bundle lacks the current CA
    /// (pgrepl's CA was replaced, or lost and created again) trusts it beside the old one, and
    /// reloads; its certificates are then issued by the new CA in the run's own steps, and no
    /// replica meets a certificate it does not trust on the way.
    pub async fn trust_current_ca(&self, running: &[String]) -> Result<(), Error> {
        let Some(certs) = self.certs else {
            return Ok(());
        };
        for name in running {
            let (h, t) = (self.host(name)?, self.transport(name)?);
            if crate::steps::tls::trust_beside(t.as_ref(), h, certs.bundle()).await? {
                self.ctx
                    .db(t.as_ref(), h)
                    .await
                    .on_step(name, "reload")?
                    .reload()
                    .await
                    .on_step(name, "reload")?;
                self.note(format!(
                    "{name}: trusts the current CA beside the previous one"
                ));
            }
        }
        Ok(())
    }

    /// The last step of a TLS change: turning it on (or client certificates), [`enforce_tls`];
    /// turning it off, every host rendered with `ssl` off (a replica that reconnects now
    /// connects without TLS, as its `primary_conninfo` already says).
    ///
    /// [`enforce_tls`]: Executor::enforce_tls
    pub async fn end_tls_change(&self) -> Result<(), Error> {
        if self.inv.tls.is_on() {
            return self.enforce_tls().await;
        }
        for h in &self.inv.hosts {
            let t = self.transport(&h.name)?;
            converge_running(self.ctx, self.inv, t.as_ref(), h).await?;
        }
        self.note(format!(
            "{}: ssl off on every host",
            self.inv.primary().name
        ));
        Ok(())
    }

    /// Waits (`timeouts.streaming`) until no server sends WAL without TLS, then renders every
    /// host with `hostssl` lines and reloads it.
    pub async fn enforce_tls(&self) -> Result<(), Error> {
        let (ctx, inv) = (self.ctx, self.inv);
        let t0 = Instant::now();
        let upstreams: Vec<_> = inv
            .hosts
            .iter()
            .filter(|h| {
                inv.replicas()
                    .any(|r| r.upstream.as_deref() == Some(&h.name))
            })
            .collect();
        for up in upstreams {
            let t = self.transport(&up.name)?;
            let db = ctx
                .db(t.as_ref(), up)
                .await
                .on_step(&up.name, "enforce TLS")?;
            poll_until(
                "timeouts.streaming",
                inv.timeouts.streaming,
                Duration::from_millis(200),
                || async {
                    let certs = inv.tls.client_certs();
                    let plain: Vec<String> = db
                        .senders_tls()
                        .await?
                        .into_iter()
                        .filter(|s| !s.ssl || (certs && !s.client_cert))
                        .map(|s| s.application_name)
                        .collect();
                    Ok(if plain.is_empty() {
                        Poll::Ready(())
                    } else {
                        Poll::Pending(format!("WAL senders without TLS (or without a client certificate): {}", plain.join(", ")))
                    })
                },
            )
            .await
            .map_err(|e| {
                Error::step(&up.name, "enforce TLS", e.to_string()).with_hint(format!(
                    "a replica still streams without TLS; read its server log, then re-run pgrepl init -i {}",
                    inv.file.display()
                ))
            })?;
        }
        for h in &inv.hosts {
            let t = self.transport(&h.name)?;
            converge_running(ctx, inv, t.as_ref(), h).await?;
        }
        ctx.ui.done(
            &inv.primary().name,
            "TLS enforced: replication and rewind logins only over TLS (hostssl)",
            t0.elapsed(),
        );
        self.note(format!(
            "{}: hostssl lines on every host",
            inv.primary().name
        ));
        Ok(())
    }
}
