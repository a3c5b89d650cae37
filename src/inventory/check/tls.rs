//! `tls:`: off, pgrepl's own CA (the default, also with no section), or the user's files.
//! Checks the shape and the local paths; the files' contents (a CA that signs each host's
//! certificate, names that cover its address, a key that matches) are checked by `check` and
//! `init` when they read them (`steps::tls`).

use std::collections::BTreeMap;
use std::path::Path;

use serde_saphyr::Spanned;

use super::{check_local_path, Checker};
use crate::inventory::model::Host;
use crate::inventory::raw::{RawInventory, RawTls, RawTlsSettings};
use crate::inventory::tls::{HostCertFiles, IssuedTls, ProvidedTls, Tls};

/// The settings pgrepl writes itself while TLS is on.
const OWNED: &[&str] = &["ssl", "ssl_cert_file", "ssl_key_file", "ssl_ca_file"];

/// The `ssl_min_protocol_version` values allowed: TLS 1.2 or newer.
const MIN_PROTOCOLS: &[&str] = &["TLSv1.2", "TLSv1.3"];

/// Checks `tls:` (absent: pgrepl issues the certificates with its defaults) and the settings
/// maps against it.
pub(super) fn check(c: &mut Checker, whole: &RawInventory, hosts: &[Host], path: &Path) -> Tls {
    let cluster = &whole.cluster.value;
    let settings = super::settings_maps(whole);
    let raw: Option<&Spanned<RawTls>> = whole.tls.as_ref();
    let tls = match raw.map(|r| (&r.value, r.referenced)) {
        Some((RawTls::Off, _)) => Tls::Off,
        None => Tls::Issued(issued_defaults(cluster, path)),
        Some((RawTls::On(s), at)) if s.certificates.is_some() || s.ca_file.is_some() => {
            provided(c, s, at, hosts, path)
        }
        Some((RawTls::On(s), _)) => issued(c, s, cluster, path),
    };
    for map in &settings {
        check_settings(c, map, tls.is_on());
    }
    tls
}

fn issued_defaults(cluster: &str, path: &Path) -> IssuedTls {
    let dir = path.parent().unwrap_or(Path::new("."));
    IssuedTls {
        ca_cert: dir.join(format!("{cluster}.ca.crt")),
        ca_key: dir.join(format!("{cluster}.ca.key")),
        server_days: 365,
        ca_days: 3650,
        client_certs: false,
    }
}

fn issued(c: &mut Checker, s: &RawTlsSettings, cluster: &str, path: &Path) -> Tls {
    let mut t = issued_defaults(cluster, path);
    match (&s.ca_cert, &s.ca_key) {
        (Some(cert), Some(key)) => {
            if let Some(p) = check_local_path(c, cert, path) {
                t.ca_cert = p;
            }
            if let Some(p) = check_local_path(c, key, path) {
                t.ca_key = p;
            }
        }
        (None, None) => {}
        (Some(one), None) | (None, Some(one)) => c.at(
            one.referenced,
            "tls.ca_cert and tls.ca_key go together",
            "give both (the CA's certificate and its key), or neither for the defaults beside the inventory",
        ),
    }
    if let Some(d) = &s.server_days {
        if d.value == 0 || d.value > 3650 {
            c.at(
                d.referenced,
                format!("tls.server_days {} is out of range", d.value),
                "use 1 to 3650 days",
            );
        }
        t.server_days = d.value;
    }
    if let Some(d) = &s.ca_days {
        if d.value < t.server_days || d.value > 36500 {
            c.at(
                d.referenced,
                format!("tls.ca_days {} is out of range", d.value),
                format!("use {} (server_days) to 36500 days", t.server_days.max(1)),
            );
        }
        t.ca_days = d.value;
    }
    t.client_certs = s.client_certs.as_ref().is_some_and(|b| b.value);
    Tls::Issued(t)
}

fn provided(
    c: &mut Checker,
    s: &RawTlsSettings,
    at: serde_saphyr::Location,
    hosts: &[Host],
    path: &Path,
) -> Tls {
    let issued_only = [
        ("ca_cert", s.ca_cert.as_ref().map(|v| v.referenced)),
        ("ca_key", s.ca_key.as_ref().map(|v| v.referenced)),
        ("server_days", s.server_days.as_ref().map(|v| v.referenced)),
        ("ca_days", s.ca_days.as_ref().map(|v| v.referenced)),
        (
            "client_certs",
            s.client_certs.as_ref().map(|v| v.referenced),
        ),
    ];
    for (key, loc) in issued_only {
        if let Some(loc) = loc {
            c.at(loc, format!("tls.{key} is for certificates pgrepl issues, not with tls.certificates"), "remove it, or remove ca_file and certificates to let pgrepl issue the certificates");
        }
    }
    let ca_file = match &s.ca_file {
        Some(f) => check_local_path(c, f, path),
        None => {
            c.at(
                at,
                "tls.certificates needs tls.ca_file",
                "name the PEM file of the CA that signs the hosts' certificates",
            );
            None
        }
    };
    let mut certificates = BTreeMap::new();
    let given = s.certificates.as_ref();
    if given.is_none() {
        c.at(at, "tls.ca_file needs tls.certificates", "give each host's cert and key files under tls.certificates (or remove ca_file to let pgrepl issue the certificates)");
    }
    for (name, hc) in given.map(|m| m.value.iter()).into_iter().flatten() {
        if !hosts.iter().any(|h| &h.name == name) {
            c.at(
                hc.referenced,
                format!("tls.certificates names {name}, which is not a host"),
                "use the names under hosts:",
            );
            continue;
        }
        let cert = check_local_path(c, &hc.value.cert, path);
        let key = check_local_path(c, &hc.value.key, path);
        if let (Some(cert), Some(key)) = (cert, key) {
            certificates.insert(name.clone(), HostCertFiles { cert, key });
        }
    }
    let loc = given.map(|g| g.referenced).unwrap_or(at);
    for h in hosts
        .iter()
        .filter(|h| given.is_some_and(|g| !g.value.contains_key(&h.name)))
    {
        c.at(
            loc,
            format!("tls.certificates has no certificate for host {}", h.name),
            "give every host its cert and key files",
        );
    }
    Tls::Provided(ProvidedTls {
        ca_file: ca_file.unwrap_or_default(),
        certificates,
    })
}

/// While TLS is on pgrepl writes `ssl` and its files itself; the protocol versions may not
/// go below TLS 1.2.
fn check_settings(c: &mut Checker, map: &BTreeMap<String, Spanned<String>>, on: bool) {
    for (name, v) in map {
        if on && OWNED.contains(&name.as_str()) {
            c.at(
                v.referenced,
                format!("{name} is set by pgrepl while TLS is on"),
                "remove it: configure certificates under tls: (or write `tls: off`)",
            );
        }
        // The maximum may also be '' (no maximum).
        let version = name == "ssl_min_protocol_version"
            || (name == "ssl_max_protocol_version" && !v.value.is_empty());
        if on && version && !MIN_PROTOCOLS.contains(&v.value.as_str()) {
            c.at(
                v.referenced,
                format!("{name} {:?} is below TLS 1.2", v.value),
                "use TLSv1.2 or TLSv1.3",
            );
        }
    }
}
