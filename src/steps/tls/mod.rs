//! TLS on the hosts: each host's files (the CA bundle it trusts, its server certificate and
//! key, and the replication roles' client certificate) installed in its 0700 `tls_dir`, keys
//! 0600, sent over stdin (never in argv, logs or output); and what a host's certificate says
//! (for `status`). Certificates pgrepl issued are kept while they are valid for the host (signed
//! by the current CA, covering its names, not expired) and re-issued otherwise, or when asked.

pub mod ca;

use crate::context::Context;
use crate::error::{Error, OnStep};
use crate::inventory::{Host, Inventory};
use crate::pg::datadir;
use crate::pki::{self, CertInfo};
use crate::transport::Transport;

use self::ca::Certs;
use super::exec::{install_file, run_step};

/// The step name of every failure here.
const STEP: &str = "install TLS files";

/// Installs `h`'s TLS files from `certs`; with `renew`, certificates pgrepl issues are issued
/// again even when the current ones are valid. Returns the changes ("pg1: TLS server
/// certificate"), empty when every file was already right.
pub async fn install(
    ctx: &Context<'_>,
    inv: &Inventory,
    t: &dyn Transport,
    h: &Host,
    certs: &Certs,
    renew: bool,
) -> Result<Vec<String>, Error> {
    let f = h.tls_files();
    let mut changes = Vec::new();
    if install_bundle(t, h, certs.bundle()).await? {
        changes.push(format!("{}: TLS CA bundle", h.name));
    }
    let server = match certs {
        Certs::Provided { hosts, .. } => {
            let (cert, key) = &hosts[&h.name];
            Some((cert.clone(), key.expose().to_string()))
        }
        Certs::Issued { ca, days, .. } => {
            let names = inv.cert_names(h);
            let keep = !renew && still_good(t, &f.server_cert, &f.server_key, ca, &names).await;
            if keep {
                None
            } else {
                let is = ca
                    .issue_server(&h.name, &names, *days)
                    .on_step(&h.name, STEP)?;
                Some((is.cert_pem, is.key.expose().to_string()))
            }
        }
    };
    if let Some((cert, key)) = server {
        if install_pair(t, &f.server_key, &key, &f.server_cert, &cert).await? {
            changes.push(format!("{}: TLS server certificate", h.name));
        }
    }
    if let Certs::Issued {
        ca,
        days,
        client_certs: true,
        ..
    } = certs
    {
        if renew || !still_good(t, &f.client_cert, &f.client_key, ca, &[]).await {
            let is = ca
                .issue_client(&inv.replication_user, *days)
                .on_step(&h.name, STEP)?;
            install_pair(
                t,
                &f.client_key,
                is.key.expose(),
                &f.client_cert,
                &is.cert_pem,
            )
            .await?;
            changes.push(format!("{}: TLS client certificate", h.name));
        }
    }
    for c in &changes {
        ctx.ui.detail(c.clone());
    }
    Ok(changes)
}

/// Installs a key (0600) and its certificate (0644) together: both written beside their place,
/// then moved over it by one command on the host. True when they changed.
async fn install_pair(
    t: &dyn Transport,
    key_path: &str,
    key: &str,
    cert_path: &str,
    cert: &str,
) -> Result<bool, Error> {
    if read(t, key_path).await.as_deref() == Some(key)
        && read(t, cert_path).await.as_deref() == Some(cert)
    {
        return Ok(false);
    }
    let staged = |p: &str| format!("{p}.pgrepl-new");
    run_step(
        t,
        &datadir::write_file(&staged(key_path), "0600", key.as_bytes().to_vec()),
        STEP,
        None,
    )
    .await?;
    run_step(
        t,
        &datadir::write_file(&staged(cert_path), "0644", cert.as_bytes().to_vec()),
        STEP,
        None,
    )
    .await?;
    run_step(
        t,
        &crate::pg::ssl::swap_pair_cmd(key_path, cert_path),
        STEP,
        None,
    )
    .await?;
    Ok(true)
}

/// Installs the CA bundle `h` trusts (creating its 0700 `tls_dir`); true when it changed.
pub async fn install_bundle(t: &dyn Transport, h: &Host, bundle: &str) -> Result<bool, Error> {
    run_step(t, &datadir::ensure_dir(&h.tls_dir, "0700"), STEP, None).await?;
    let ca = h.tls_files().ca;
    Ok(install_file(t, &ca, "0644", bundle, STEP).await?.is_some())
}

/// Whether the certificate at `cert` (with its key at `key`) on the host can stay: it parses,
/// the current CA signed it, it covers every name in `names`, its key matches, and it is valid
/// for more than a day.
async fn still_good(
    t: &dyn Transport,
    cert: &str,
    key: &str,
    ca: &pki::Ca,
    names: &[String],
) -> bool {
    let (Some(c), Some(k)) = (read(t, cert).await, read(t, key).await) else {
        return false;
    };
    let Ok(infos) = pki::read_certs(&c) else {
        return false;
    };
    let Some(info) = infos.first() else {
        return false;
    };
    info.not_after > ca::now() + 86_400
        && names.iter().all(|n| pki::covers(info, n))
        && pki::signed_by(&c, &ca.cert_pem).unwrap_or(false)
        && pki::key_matches(&c, &k).unwrap_or(false)
}

/// When `h` already has a CA bundle that lacks one of `bundle`'s CAs (pgrepl's CA was replaced
/// or lost and created again): the host is given its current bundle with `bundle` added, so it
/// trusts both while the certificates change. True when that was needed.
pub async fn trust_beside(t: &dyn Transport, h: &Host, bundle: &str) -> Result<bool, Error> {
    let Some(current) = read(t, &h.tls_files().ca).await else {
        return Ok(false);
    };
    if current.contains(bundle.trim()) {
        return Ok(false);
    }
    let both = format!("{}\n{}\n", current.trim_end(), bundle.trim_end());
    install_bundle(t, h, &both).await
}

/// Whether `h`'s server certificate is signed by the CA certificate `ca_pem` (false when it is
/// missing or unreadable).
pub async fn signed_by(t: &dyn Transport, h: &Host, ca_pem: &str) -> bool {
    match read(t, &h.tls_files().server_cert).await {
        Some(c) => pki::signed_by(&c, ca_pem).unwrap_or(false),
        None => false,
    }
}

/// A file's content on the host; None when it is missing or unreadable.
async fn read(t: &dyn Transport, path: &str) -> Option<String> {
    match t.run(&datadir::read_file(path), None).await {
        Ok(o) if o.success() => Some(o.stdout),
        _ => None,
    }
}

/// What the host's server certificate says (the first certificate of `server.crt`): None
/// when there is no such file.
///
/// # Errors
/// The file cannot be read, or is not a certificate.
pub async fn server_cert(t: &dyn Transport, h: &Host) -> anyhow::Result<Option<CertInfo>> {
    let path = h.tls_files().server_cert;
    let o = t.run(&datadir::read_file(&path), None).await?;
    match o.code {
        Some(0) => {
            let certs = pki::read_certs(&o.stdout)?;
            Ok(certs.into_iter().next())
        }
        Some(datadir::READ_ABSENT) => Ok(None),
        _ => anyhow::bail!("cannot read {path}: {}", o.stderr_tail.join(" ")),
    }
}

/// Logs in from `h` to `target`'s server over TCP as the rewind role, the way a replica
/// connects (`sslmode=verify-full` against `h`'s CA bundle, `channel_binding=require`, the
/// client certificate when there is one): proves `target`'s certificate is valid for its
/// address. Returns the TLS version and cipher the server negotiated.
///
/// # Errors
/// The login failed: libpq's words (`certificate verify failed`, a host-name mismatch, a
/// `pg_hba.conf` refusal) with the host and the step.
pub async fn verify_login(
    inv: &Inventory,
    t: &dyn Transport,
    h: &Host,
    target: &Host,
) -> Result<String, Error> {
    let step = "verify TLS login";
    let port = target.port.to_string();
    let tls = inv.tls_conninfo(h);
    let mut params = vec![
        ("host", target.address.as_str()),
        ("port", &port),
        ("user", &inv.rewind_user),
        ("dbname", "postgres"),
        ("passfile", &h.passfile),
        ("application_name", "pgrepl_tls_check"),
        ("connect_timeout", "10"),
    ];
    params.extend(tls.iter().map(|(k, v)| (*k, v.as_str())));
    let cmd = crate::pg::ssl::login_cmd(&h.bin_dir, &crate::pg::conninfo(&params));
    let o = t.run(&cmd, None).await.on_step(&h.name, step)?;
    if !o.success() {
        return Err(Error::step(
            &h.name,
            step,
            format!(
                "a TLS login to {} ({}:{}) failed: {}",
                target.name,
                target.address,
                target.port,
                crate::pg::ssl::login_failure(&o.stderr_tail)
            ),
        )
        .with_stderr(o.stderr_tail)
        .with_hint(format!(
            "compare the certificate with its CA: openssl verify -CAfile {} {} (on {}), then re-run pgrepl init -i {}",
            target.tls_files().ca,
            target.tls_files().server_cert,
            target.name,
            inv.file.display()
        )));
    }
    Ok(o.stdout.trim().to_string())
}

/// The certificate `h`'s server presents now (read on `h` with `openssl s_client`): `None`
/// when the host has no `openssl`.
///
/// # Errors
/// The server did not answer a TLS handshake, or what it sent is not a certificate.
pub async fn presented(t: &dyn Transport, h: &Host) -> anyhow::Result<Option<CertInfo>> {
    let o = t
        .run(&crate::pg::ssl::presented_cmd(&h.address, h.port), None)
        .await?;
    match o.code {
        Some(crate::pg::ssl::NO_OPENSSL) => Ok(None),
        Some(0) => Ok(pki::read_certs(&o.stdout)?.into_iter().next()),
        _ => anyhow::bail!(
            "no TLS handshake with {}:{}: {}",
            h.address,
            h.port,
            o.stderr_tail.join(" ")
        ),
    }
}

/// Whether `h`'s server presents the certificate of its `server.crt` (a reload that failed —
/// "SSL configuration was not reloaded" in its log — keeps the previous one): `None` when it
/// cannot be told (no `openssl` on the host, no certificate file).
///
/// # Errors
/// As [`presented`] and [`server_cert`].
pub async fn serves_its_file(t: &dyn Transport, h: &Host) -> anyhow::Result<Option<bool>> {
    let (Some(p), Some(f)) = (presented(t, h).await?, server_cert(t, h).await?) else {
        return Ok(None);
    };
    Ok(Some(p.sha256_fingerprint == f.sha256_fingerprint))
}

/// A Unix time (seconds) as RFC 3339 UTC, e.g. `2027-11-30T19:00:00Z`.
pub fn rfc3339(unix: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// What `status` reads about every host's TLS, all hosts at once (empty with `tls: off`):
/// its server certificate's expiry and names, the server's `ssl` setting and the WAL senders
/// without TLS. A host that cannot be read gets `error`.
pub async fn observe(ctx: &Context<'_>) -> Vec<crate::health::tls_rules::TlsState> {
    if !ctx.inv.tls.is_on() {
        return Vec::new();
    }
    let now = ca::now();
    let futs = ctx.inv.hosts.iter().map(|h| async move {
        let mut s = crate::health::tls_rules::TlsState {
            host: h.name.clone(),
            not_after: None,
            days_left: None,
            seconds_left: None,
            loaded: None,
            names: Vec::new(),
            ssl: None,
            plain_senders: Vec::new(),
            error: None,
        };
        let t = match ctx.kept(h).await {
            Ok(t) => t,
            Err(e) => {
                s.error = Some(format!("{e:#}"));
                return s;
            }
        };
        match server_cert(t.as_ref(), h).await {
            Ok(Some(file)) => {
                // What the server presents is what counts; the file when that cannot be read.
                let served = presented(t.as_ref(), h).await.ok().flatten();
                s.loaded = served
                    .as_ref()
                    .map(|p| p.sha256_fingerprint == file.sha256_fingerprint);
                let c = served.unwrap_or(file);
                s.not_after = Some(rfc3339(c.not_after));
                s.days_left = Some(((c.not_after - now) as f64 / 8640.0).round() / 10.0);
                s.seconds_left = Some(c.not_after - now);
                s.names = c.dns_names.iter().chain(&c.ip_addresses).cloned().collect();
            }
            Ok(None) => {
                s.error = Some(format!(
                    "no server certificate at {}",
                    h.tls_files().server_cert
                ))
            }
            Err(e) => s.error = Some(format!("{e:#}")),
        }
        // Read as status reads everything: through the monitor role.
        if let Ok(crate::context::Reading { db, .. }) = ctx.monitor_db(t.as_ref(), h).await {
            if let Ok(senders) = db.senders_tls().await {
                s.plain_senders = senders
                    .into_iter()
                    .filter(|x| !x.ssl)
                    .map(|x| x.application_name)
                    .collect();
            }
            s.ssl = db.ssl_on().await.ok();
        }
        s
    });
    futures_util::future::join_all(futs).await
}
