//! `tls:` resolved: whether replication, rewind and router connections use TLS, and whose
//! certificates they use. With no `tls:` section pgrepl issues them from a cluster CA whose key
//! stays on the machine pgrepl runs on; `tls: off` is the explicit opt-out. Also what follows
//! from it for a host: the names its server certificate covers, its files on the host, the
//! libpq parameters of the connections that start on it. No I/O here.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::model::{Host, Inventory};
use super::RouterKind;

/// How the cluster's connections are encrypted (`tls:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// `tls: off`: no TLS (documented opt-out; `status` warns).
    Off,
    /// pgrepl issues every certificate from its cluster CA (the default).
    Issued(IssuedTls),
    /// The user's CA, certificates and keys (`tls.ca_file`, `tls.certificates`).
    Provided(ProvidedTls),
}

/// `tls:` when pgrepl issues the certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedTls {
    /// `tls.ca_cert`: the CA certificate on this machine (default `<cluster>.ca.crt` beside
    /// the inventory); created with the key when both are missing.
    pub ca_cert: PathBuf,
    /// `tls.ca_key`: the CA's private key on this machine, 0600 (default `<cluster>.ca.key`).
    pub ca_key: PathBuf,
    /// `tls.server_days`: validity of the server (and client) certificates, days (default 365).
    pub server_days: u32,
    /// `tls.ca_days`: validity of a new CA, days (default 3650).
    pub ca_days: u32,
    /// `tls.client_certs`: the replication and rewind roles also present a certificate
    /// (`clientcert=verify-full` on replication lines, `verify-ca` on rewind lines).
    pub client_certs: bool,
}

/// `tls:` with the user's own certificates (local files, uploaded by pgrepl).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvidedTls {
    /// `tls.ca_file`: the CA certificate(s) that sign every host's certificate (PEM bundle).
    pub ca_file: PathBuf,
    /// `tls.certificates`: host name → its certificate and key files, one for every host.
    pub certificates: BTreeMap<String, HostCertFiles>,
}

/// One host's own certificate and key (`tls.certificates.<host>`), files on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostCertFiles {
    /// The PEM certificate (the host's, optionally followed by intermediates).
    pub cert: PathBuf,
    /// The PEM private key, 0600.
    pub key: PathBuf,
}

/// Days before expiry at which `status` warns about a certificate.
pub const EXPIRY_WARNING_DAYS: i64 = 30;

impl Tls {
    /// TLS is on (issued or provided).
    pub fn is_on(&self) -> bool {
        !matches!(self, Tls::Off)
    }

    /// The replication and rewind roles present client certificates.
    pub fn client_certs(&self) -> bool {
        matches!(self, Tls::Issued(i) if i.client_certs)
    }
}

/// A host's TLS files, in its `tls_dir` (`<data_dir>.tls`, 0700): outside the data directory,
/// so neither pg_basebackup nor pg_rewind copies one host's key onto another.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TlsFiles {
    /// `server.crt`: the server's certificate (`ssl_cert_file`).
    pub server_cert: String,
    /// `server.key`: its private key, 0600 (`ssl_key_file`).
    pub server_key: String,
    /// `ca.crt`: the CAs this host trusts (`ssl_ca_file`, libpq `sslrootcert`).
    pub ca: String,
    /// `client.crt`: the certificate the replication and rewind roles present (`sslcert`).
    pub client_cert: String,
    /// `client.key`: its key, 0600 (`sslkey`).
    pub client_key: String,
}

impl Host {
    /// The host's TLS files (see [`TlsFiles`]).
    pub fn tls_files(&self) -> TlsFiles {
        let d = &self.tls_dir;
        TlsFiles {
            server_cert: format!("{d}/server.crt"),
            server_key: format!("{d}/server.key"),
            ca: format!("{d}/ca.crt"),
            client_cert: format!("{d}/client.crt"),
            client_key: format!("{d}/client.key"),
        }
    }
}

impl Inventory {
    /// The names `h`'s server certificate covers: its name, its address, its extra listen
    /// addresses, and the address of every HAProxy router (HAProxy passes TLS through, so a
    /// client of a route verifies the server's certificate against the router's address).
    pub fn cert_names(&self, h: &Host) -> Vec<String> {
        let mut names = vec![h.name.clone(), h.address.clone()];
        names.extend(h.listen_extra.iter().cloned());
        names.extend(
            self.routers
                .iter()
                .filter(|r| r.kind == RouterKind::Haproxy)
                .map(|r| r.address.clone()),
        );
        let mut seen = std::collections::BTreeSet::new();
        names.retain(|n| seen.insert(n.clone()));
        names
    }

    /// The libpq parameters of a replication or rewind connection that starts on `h`
    /// (walreceiver, pg_basebackup, pg_rewind): `sslmode=verify-full` against `h`'s CA file,
    /// `channel_binding=require`, and the client certificate when there is one. Empty with
    /// `tls: off`.
    pub fn tls_conninfo(&self, h: &Host) -> Vec<(&'static str, String)> {
        if !self.tls.is_on() {
            return Vec::new();
        }
        let f = h.tls_files();
        let mut v = vec![
            ("sslmode", "verify-full".to_string()),
            ("sslrootcert", f.ca),
            ("channel_binding", "require".to_string()),
        ];
        if self.tls.client_certs() {
            v.push(("sslcert", f.client_cert));
            v.push(("sslkey", f.client_key));
        }
        v
    }
}
