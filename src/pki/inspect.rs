//! Reading certificates: what pgrepl needs to know of one ([`CertInfo`]), whether it covers a
//! host name as libpq's `verify-full` would check it, whether a CA signed it, whether a key is
//! its own.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{anyhow, bail, Context as _, Result};
use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::error::X509Error;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

use super::pem;

/// What pgrepl reads from a certificate.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertInfo {
    /// The subject's first commonName, if any (and if it is a string type).
    pub subject_cn: Option<String>,
    /// The issuer's first commonName, if any.
    pub issuer_cn: Option<String>,
    /// The dNSName subjectAltNames, in certificate order.
    pub dns_names: Vec<String>,
    /// The iPAddress subjectAltNames as text (`198.18.1.2`, `::1`), in certificate order.
    pub ip_addresses: Vec<String>,
    /// notBefore, Unix seconds (UTC).
    pub not_before: i64,
    /// notAfter, Unix seconds (UTC).
    pub not_after: i64,
    /// basicConstraints CA:TRUE.
    pub is_ca: bool,
    /// SHA-256 of the certificate's DER: 64 lowercase hex digits, no colons.
    pub sha256_fingerprint: String,
}

/// Every certificate in a PEM bundle, in order (blocks other than `CERTIFICATE`, such as a key,
/// are skipped).
///
/// # Errors
/// The text holds no certificate; a PEM block or a certificate cannot be parsed (the error
/// names its position, 1-based).
pub fn read_certs(pem: &str) -> Result<Vec<CertInfo>> {
    pem::certificates(pem)?
        .iter()
        .enumerate()
        .map(|(i, der)| info(der).with_context(|| format!("certificate {}", i + 1)))
        .collect()
}

/// Does `info` cover the host `name` as libpq's `sslmode=verify-full` checks it?
///
/// An IP address (v4 or v6, any spelling) matches only an iPAddress SAN. A DNS name matches a
/// dNSName SAN ignoring ASCII case; a SAN `*.rest` matches exactly one non-empty leftmost label
/// before `rest`. The subject CN is compared (as a DNS name or IP text) only when the
/// certificate has no SAN at all.
///
/// This is slightly stricter than libpq, so that `true` always means libpq accepts: libpq
/// also compares an IP host with dNSName SANs as text, and falls back to the CN when only the
/// other kind of SAN is present. Certificates pgrepl issues always carry SANs.
pub fn covers(info: &CertInfo, name: &str) -> bool {
    let has_san = !info.dns_names.is_empty() || !info.ip_addresses.is_empty();
    if let Ok(ip) = name.parse::<IpAddr>() {
        if !has_san {
            return info.subject_cn.as_deref().and_then(|cn| cn.parse().ok()) == Some(ip);
        }
        return info.ip_addresses.iter().any(|a| a.parse() == Ok(ip));
    }
    if !has_san {
        return info
            .subject_cn
            .as_deref()
            .is_some_and(|cn| dns_matches(cn, name));
    }
    info.dns_names.iter().any(|p| dns_matches(p, name))
}

/// Does the certificate name `pattern` match the host `name` (ASCII case-insensitive, a
/// leading `*.` standing for one non-empty label)?
fn dns_matches(pattern: &str, name: &str) -> bool {
    if pattern.eq_ignore_ascii_case(name) {
        return true;
    }
    let Some(rest) = pattern.strip_prefix("*.") else {
        return false;
    };
    match name.split_once('.') {
        Some((label, tail)) => {
            !label.is_empty() && !rest.is_empty() && tail.eq_ignore_ascii_case(rest)
        }
        None => false,
    }
}

/// Whether the first certificate in `cert_pem` was signed by one of the certificates in
/// `ca_bundle_pem`: its issuer name equals that certificate's subject (DER) and its signature
/// verifies with that certificate's public key. Validity dates, basicConstraints and usages
/// are not checked here (see [`read_certs`]).
///
/// # Errors
/// Either text holds no certificate or one that cannot be parsed; a CA whose name matches uses
/// a signature algorithm ring cannot verify.
pub fn signed_by(cert_pem: &str, ca_bundle_pem: &str) -> Result<bool> {
    let cert_der = first(cert_pem)?;
    let cert = parse(&cert_der)?;
    let ca_ders = pem::certificates(ca_bundle_pem).context("the CA bundle")?;
    for (i, ca_der) in ca_ders.iter().enumerate() {
        let ca = parse(ca_der).with_context(|| format!("CA bundle certificate {}", i + 1))?;
        if ca.subject().as_raw() != cert.issuer().as_raw() {
            continue;
        }
        match cert.verify_signature(Some(ca.public_key())) {
            Ok(()) => return Ok(true),
            Err(X509Error::SignatureVerificationError) => {}
            Err(e) => bail!(
                "cannot verify the signature with CA {}: {e}",
                describe(&info(ca_der)?)
            ),
        }
    }
    Ok(false)
}

/// Whether the private key `key_pem` (unencrypted PKCS#8) belongs to the first certificate in
/// `cert_pem`: its public key equals the certificate's.
///
/// # Errors
/// No certificate, or one that cannot be parsed; no key, or one that cannot be read (see
/// [`super::Ca::load`] for the forms accepted).
pub fn key_matches(cert_pem: &str, key_pem: &str) -> Result<bool> {
    let cert_der = first(cert_pem)?;
    let cert = parse(&cert_der)?;
    let key = pem::key_pair(key_pem)?;
    Ok(cert.public_key().subject_public_key.data.as_ref() == key.public_key_raw())
}

/// The DER of the first certificate in `text`.
fn first(text: &str) -> Result<Vec<u8>> {
    Ok(pem::certificates(text)?.swap_remove(0))
}

/// One DER certificate, parsed, with nothing after it.
fn parse(der: &[u8]) -> Result<X509Certificate<'_>> {
    let (rest, cert) =
        X509Certificate::from_der(der).map_err(|e| anyhow!("not an X.509 certificate: {e}"))?;
    if !rest.is_empty() {
        bail!("{} stray bytes after the certificate", rest.len());
    }
    Ok(cert)
}

/// What pgrepl reads from one DER certificate.
pub(super) fn info(der: &[u8]) -> Result<CertInfo> {
    let cert = parse(der)?;
    let mut dns_names = Vec::new();
    let mut ip_addresses = Vec::new();
    let san = cert
        .subject_alternative_name()
        .map_err(|e| anyhow!("bad subjectAltName: {e}"))?;
    for name in san.iter().flat_map(|s| &s.value.general_names) {
        match name {
            GeneralName::DNSName(d) => dns_names.push((*d).to_string()),
            GeneralName::IPAddress(bytes) => ip_addresses.push(ip_text(bytes)?),
            _ => {}
        }
    }
    let is_ca = cert
        .basic_constraints()
        .map_err(|e| anyhow!("bad basicConstraints: {e}"))?
        .is_some_and(|bc| bc.value.ca);
    let validity = cert.validity();
    Ok(CertInfo {
        subject_cn: first_cn(cert.subject()),
        issuer_cn: first_cn(cert.issuer()),
        dns_names,
        ip_addresses,
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
        is_ca,
        sha256_fingerprint: Sha256::digest(der)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    })
}

/// Whether the certificate may sign certificates as far as keyUsage says (no keyUsage: yes).
pub(super) fn may_sign_certificates(der: &[u8]) -> Result<bool> {
    let cert = parse(der)?;
    let ku = cert.key_usage().map_err(|e| anyhow!("bad keyUsage: {e}"))?;
    Ok(ku.is_none_or(|k| k.value.key_cert_sign()))
}

/// A certificate in words for messages: `CN=pgrepl CA main (sha256 0a1b2c3d…)`.
pub(super) fn describe(info: &CertInfo) -> String {
    format!(
        "CN={} (sha256 {}…)",
        info.subject_cn.as_deref().unwrap_or("(none)"),
        &info.sha256_fingerprint[..16]
    )
}

/// The first commonName of `name` that is a string.
fn first_cn(name: &X509Name<'_>) -> Option<String> {
    name.iter_common_name()
        .find_map(|a| a.as_str().ok())
        .map(str::to_string)
}

/// An iPAddress SAN's octets as text.
fn ip_text(bytes: &[u8]) -> Result<String> {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return Ok(Ipv4Addr::from(v4).to_string());
    }
    if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        return Ok(Ipv6Addr::from(v6).to_string());
    }
    bail!("an iPAddress subjectAltName of {} bytes", bytes.len())
}
