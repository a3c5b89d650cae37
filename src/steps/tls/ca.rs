//! The certificates' source on the machine pgrepl runs on: pgrepl's cluster CA (its key in a
//! 0600 file that never leaves this machine; created with the certificate when both are
//! missing) or the user's CA and host files. Read before any host is contacted; a file that
//! cannot be used is a refusal (exit 4, nothing changed).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::inventory::{Inventory, IssuedTls, ProvidedTls, Tls};
use crate::pki::{self, Ca, KeyPem};

/// Where the certificates a host gets come from.
pub enum Certs {
    /// pgrepl issues them from its CA.
    Issued {
        /// The current CA (certificate and key).
        ca: Ca,
        /// What hosts trust: the current CA, then the previous one while it is valid (after a
        /// CA renewal both are trusted until every certificate is re-issued).
        bundle: String,
        /// Validity of a server or client certificate, days.
        days: u32,
        /// Issue a client certificate for the replication and rewind roles.
        client_certs: bool,
    },
    /// The user's: the CA bundle, and each host's certificate and key.
    Provided {
        /// The CA bundle (`tls.ca_file`).
        bundle: String,
        /// Host name → (certificate PEM, key).
        hosts: BTreeMap<String, (String, KeyPem)>,
    },
}

impl std::fmt::Debug for Certs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Certs::Issued { .. } => "Certs::Issued(<redacted>)",
            Certs::Provided { .. } => "Certs::Provided(<redacted>)",
        })
    }
}

impl Certs {
    /// The current CA certificate of pgrepl's own CA; None for the user's certificates.
    pub fn ca_pem(&self) -> Option<&str> {
        match self {
            Certs::Issued { ca, .. } => Some(&ca.cert_pem),
            Certs::Provided { .. } => None,
        }
    }

    /// The PEM bundle every host trusts.
    pub fn bundle(&self) -> &str {
        match self {
            Certs::Issued { bundle, .. } | Certs::Provided { bundle, .. } => bundle,
        }
    }
}

/// The previous CA certificate, kept beside the current one after `tls renew --ca`.
pub fn previous_path(ca_cert: &Path) -> PathBuf {
    let mut s = ca_cert.as_os_str().to_owned();
    s.push(".previous");
    PathBuf::from(s)
}

fn refuse(message: String, hint: String) -> Error {
    Error::refused("local", "tls", message, hint)
}

/// Reads a key file, refusing one that group or others can read.
fn read_key(path: &Path) -> Result<KeyPem, Error> {
    let meta = std::fs::metadata(path).map_err(|e| {
        refuse(
            format!("cannot read {}: {e}", path.display()),
            "check the path under tls: in the inventory".into(),
        )
    })?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(refuse(
            format!(
                "key file {} has mode {:04o}; group and others must have no access",
                path.display(),
                meta.permissions().mode() & 0o7777
            ),
            format!("chmod 600 {}", path.display()),
        ));
    }
    read_text(path).map(KeyPem::from_pem)
}

fn read_text(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| {
        refuse(
            format!("cannot read {}: {e}", path.display()),
            "check the path under tls: in the inventory".into(),
        )
    })
}

/// Writes a new file (never over an existing one) with `mode`.
fn write_new(path: &Path, mode: u32, content: &str) -> Result<(), Error> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| {
            refuse(
                format!("cannot create {}: {e}", path.display()),
                "create its directory, or name another path under tls: (ca_cert, ca_key)"
                    .to_string(),
            )
        })?;
    f.write_all(content.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| {
            refuse(
                format!("cannot write {}: {e}", path.display()),
                "check the free space and the directory's owner".into(),
            )
        })
}

/// The certificates' source for `inv` (None with `tls: off`). A missing pgrepl CA is created
/// when `create` (not in a dry run, and not by read-only commands).
pub fn load(inv: &Inventory, create: bool) -> Result<Option<Certs>, Error> {
    match &inv.tls {
        Tls::Off => Ok(None),
        Tls::Issued(i) => issued(inv, i, create).map(Some),
        Tls::Provided(p) => provided(inv, p).map(Some),
    }
}

/// Whether pgrepl's CA files exist (both), are missing (both), or only one is there.
pub fn ca_present(i: &IssuedTls) -> Result<bool, Error> {
    match (i.ca_cert.exists(), i.ca_key.exists()) {
        (true, true) => Ok(true),
        (false, false) => Ok(false),
        (cert, _) => {
            let (there, missing) = if cert {
                (&i.ca_cert, &i.ca_key)
            } else {
                (&i.ca_key, &i.ca_cert)
            };
            Err(refuse(
                format!("{} exists but {} does not: the CA needs both", there.display(), missing.display()),
                format!("restore {} (or move {} aside to let pgrepl create a new CA: every host then gets new certificates)", missing.display(), there.display()),
            ))
        }
    }
}

/// What creating the missing cluster CA would do (one line for a dry run); None when TLS is
/// off, the certificates are the user's, or the CA exists.
pub fn missing(inv: &Inventory) -> Result<Option<String>, Error> {
    match &inv.tls {
        Tls::Issued(i) if !ca_present(i)? => Ok(Some(format!(
            "create the cluster CA: {} (certificate) and {} (key, 0600), valid {} days",
            i.ca_cert.display(),
            i.ca_key.display(),
            i.ca_days
        ))),
        _ => Ok(None),
    }
}

fn issued(inv: &Inventory, i: &IssuedTls, create: bool) -> Result<Certs, Error> {
    let ca = if ca_present(i)? {
        let key = read_key(&i.ca_key)?;
        Ca::load(&read_text(&i.ca_cert)?, key.expose()).map_err(|e| {
            refuse(
                format!(
                    "the CA in {} and {} cannot be used: {e:#}",
                    i.ca_cert.display(),
                    i.ca_key.display()
                ),
                "restore the CA's files, or move both aside to let pgrepl create a new CA".into(),
            )
        })?
    } else if create {
        let ca = Ca::generate(&inv.cluster, i.ca_days)
            .map_err(|e| Error::Other(format!("could not generate the cluster CA: {e:#}")))?;
        write_new(&i.ca_key, 0o600, ca.key.expose())?;
        write_new(&i.ca_cert, 0o644, &ca.cert_pem)?;
        ca
    } else {
        return Err(refuse(
            format!("the cluster CA {} does not exist yet", i.ca_cert.display()),
            format!("pgrepl init -i {} creates it", inv.file.display()),
        ));
    };
    Ok(Certs::Issued {
        bundle: bundle(&ca.cert_pem, &previous_path(&i.ca_cert)),
        ca,
        days: i.server_days,
        client_certs: i.client_certs,
    })
}

/// The current CA, then the previous one while it has not expired.
fn bundle(current: &str, previous: &Path) -> String {
    let mut out = current.trim_end().to_string() + "\n";
    if let Ok(prev) = std::fs::read_to_string(previous) {
        let now = now();
        let valid = pki::read_certs(&prev).is_ok_and(|c| c.iter().all(|c| c.not_after > now));
        if valid && prev.trim() != current.trim() {
            out.push_str(prev.trim_end());
            out.push('\n');
        }
    }
    out
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// One host's own certificate and key, checked: the key is the certificate's, a CA of the
/// bundle signed it, it names the host's address, and it is valid now.
fn own_cert(
    inv: &Inventory,
    p: &ProvidedTls,
    bundle: &str,
    name: &str,
    files: &crate::inventory::HostCertFiles,
) -> Result<(String, KeyPem), Error> {
    let cert = read_text(&files.cert)?;
    let key = read_key(&files.key)?;
    let ok = pki::key_matches(&cert, key.expose()).map_err(|e| {
        refuse(format!("{}: cannot compare {} with {}: {e:#}", name, files.key.display(), files.cert.display()), "give a PEM certificate and its unencrypted PKCS#8 key (openssl pkcs8 -topk8 -nocrypt -in KEY)".into())
    })?;
    if !ok {
        return Err(refuse(
            format!(
                "{}: the key {} does not belong to the certificate {}",
                name,
                files.key.display(),
                files.cert.display()
            ),
            "give the key the certificate was issued for".into(),
        ));
    }
    if !pki::signed_by(&cert, bundle).unwrap_or(false) {
        return Err(refuse(
            format!(
                "{}: the certificate {} is not signed by a CA in {}",
                name,
                files.cert.display(),
                p.ca_file.display()
            ),
            "give the CA that signed it as tls.ca_file".into(),
        ));
    }
    let info = pki::read_certs(&cert)
        .ok()
        .and_then(|c| c.into_iter().next())
        .ok_or_else(|| {
            refuse(
                format!(
                    "{}: {} holds no certificate pgrepl can read",
                    name,
                    files.cert.display()
                ),
                "give a PEM certificate".into(),
            )
        })?;
    if let Some(h) = inv.host(name) {
        if !pki::covers(&info, &h.address) {
            return Err(refuse(format!("{}: the certificate {} does not cover its address {} (replicas connect with sslmode=verify-full)", name, files.cert.display(), h.address), format!("issue it with {} among its subjectAltNames", h.address)));
        }
    }
    valid_now(name, &files.cert, &info)?;
    Ok((cert, key))
}

/// A certificate of the user's that is not valid now (not yet, or no longer) is refused.
fn valid_now(name: &str, file: &Path, info: &pki::CertInfo) -> Result<(), Error> {
    if info.not_before > now() {
        return Err(refuse(
            format!(
                "{}: the certificate {} is not valid before {}",
                name,
                file.display(),
                super::rfc3339(info.not_before)
            ),
            "give a certificate that is valid now (replicas would refuse it)".into(),
        ));
    }
    if info.not_after <= now() {
        return Err(refuse(
            format!(
                "{}: the certificate {} expired at {}",
                name,
                file.display(),
                super::rfc3339(info.not_after)
            ),
            "give a certificate that is valid now".into(),
        ));
    }
    Ok(())
}

fn provided(inv: &Inventory, p: &ProvidedTls) -> Result<Certs, Error> {
    let bundle = read_text(&p.ca_file)?;
    let mut hosts = BTreeMap::new();
    for (name, files) in &p.certificates {
        hosts.insert(name.clone(), own_cert(inv, p, &bundle, name, files)?);
    }
    Ok(Certs::Provided { bundle, hosts })
}

/// `tls renew --ca`: the current CA certificate becomes the previous one (still trusted), and
/// a new CA replaces it. The old key is removed: nothing is signed with it again.
pub fn rotate(inv: &Inventory, i: &IssuedTls) -> Result<(), Error> {
    let prev = previous_path(&i.ca_cert);
    let io = |what: &str, e: std::io::Error| Error::Other(format!("could not {what}: {e}"));
    let ca = Ca::generate(&inv.cluster, i.ca_days)
        .map_err(|e| Error::Other(format!("could not generate the cluster CA: {e:#}")))?;
    let _ = std::fs::remove_file(&prev);
    std::fs::rename(&i.ca_cert, &prev).map_err(|e| io("keep the previous CA certificate", e))?;
    std::fs::remove_file(&i.ca_key).map_err(|e| io("remove the previous CA key", e))?;
    write_new(&i.ca_key, 0o600, ca.key.expose())?;
    write_new(&i.ca_cert, 0o644, &ca.cert_pem)
}
