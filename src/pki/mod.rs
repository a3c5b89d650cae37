//! X.509 certificates for PostgreSQL's TLS: the cluster's own CA, the server and client
//! certificates it issues, and what pgrepl reads from a certificate (names, validity, issuer,
//! fingerprint) to check that libpq's `sslmode=verify-full` and PostgreSQL's
//! `clientcert=verify-full` will accept it.
//!
//! Pure: every function takes and returns PEM text. Nothing here reads or writes a file, opens a
//! socket or prints; callers install the PEM (a server key mode 0600, which PostgreSQL demands).
//! Private keys travel as [`KeyPem`], whose `Debug` never shows them.
//!
//! Keys are ECDSA P-256 (rcgen on ring). Loaded keys must be unencrypted PKCS#8
//! (`-----BEGIN PRIVATE KEY-----`), the only form ring reads.

mod inspect;
mod pem;
#[cfg(test)]
mod tests;

use std::net::IpAddr;

use anyhow::{bail, ensure, Context as _, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256,
};
use time::{Duration, OffsetDateTime};

pub use inspect::{covers, key_matches, read_certs, signed_by, CertInfo};

/// The longest validity pgrepl issues, in days (about 100 years).
pub const MAX_DAYS: u32 = 36_500;

/// A private key in PEM (PKCS#8, `-----BEGIN PRIVATE KEY-----`). `Debug` prints
/// `KeyPem(<redacted>)`; the text is reached only through [`KeyPem::expose`].
#[derive(Clone)]
pub struct KeyPem(String);

impl KeyPem {
    /// Wraps PEM text as a key. Nothing is checked here: [`Ca::load`] and [`key_matches`] parse it.
    pub fn from_pem(s: String) -> Self {
        KeyPem(s)
    }

    /// The PEM text, for writing into a 0600 file. Nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for KeyPem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyPem(<redacted>)")
    }
}

/// The cluster CA: its certificate (PEM, one `CERTIFICATE` block) and its private key.
#[derive(Debug, Clone)]
pub struct Ca {
    /// The CA certificate, PEM.
    pub cert_pem: String,
    /// The CA's private key, PEM (PKCS#8).
    pub key: KeyPem,
}

/// A certificate issued by a [`Ca`] with its own new private key.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate, PEM (one `CERTIFICATE` block; the CA's certificate is not appended).
    pub cert_pem: String,
    /// The certificate's private key, PEM (PKCS#8). PostgreSQL refuses a server key file that
    /// group or others can read: install it mode 0600.
    pub key: KeyPem,
}

impl Ca {
    /// A new self-signed CA: ECDSA P-256, CN `pgrepl CA <cluster>`, basicConstraints CA:TRUE
    /// with pathlen 0 (it signs only end-entity certificates), keyUsage keyCertSign and cRLSign,
    /// valid from one hour ago (clock skew between hosts) for `days` days.
    ///
    /// # Errors
    /// `cluster` is empty; `days` is 0 or above [`MAX_DAYS`]; key generation or signing failed.
    pub fn generate(cluster: &str, days: u32) -> Result<Ca> {
        ensure!(!cluster.is_empty(), "the CA needs a cluster name");
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = base_params(&format!("pgrepl CA {cluster}"), days)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params
            .self_signed(&key)
            .context("cannot sign the CA certificate")?;
        Ok(Ca {
            cert_pem: pem::encode("CERTIFICATE", cert.der()),
            key: KeyPem(pem::encode("PRIVATE KEY", &key.serialize_der())),
        })
    }

    /// Loads a CA from its PEM certificate (exactly one `CERTIFICATE` block) and PEM key.
    ///
    /// # Errors
    /// The certificate or key cannot be parsed (the key must be unencrypted PKCS#8); the text
    /// holds no certificate or more than one; the key does not belong to the certificate; the
    /// certificate is not a CA (no basicConstraints CA:TRUE, or a keyUsage without keyCertSign).
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Ca> {
        let ders = pem::certificates(cert_pem)?;
        ensure!(
            ders.len() == 1,
            "the CA certificate file holds {} certificates; expected one",
            ders.len()
        );
        let info = inspect::info(&ders[0])?;
        ensure!(
            info.is_ca,
            "the certificate {} is not a CA (no basicConstraints CA:TRUE)",
            inspect::describe(&info)
        );
        ensure!(
            inspect::may_sign_certificates(&ders[0])?,
            "the CA certificate {} may not sign certificates (its keyUsage lacks keyCertSign)",
            inspect::describe(&info)
        );
        ensure!(
            key_matches(cert_pem, key_pem)?,
            "the key does not belong to the CA certificate {}",
            inspect::describe(&info)
        );
        Ok(Ca {
            cert_pem: cert_pem.to_string(),
            key: KeyPem(key_pem.to_string()),
        })
    }

    /// A server certificate for a PostgreSQL host: CN `cn`; one subjectAltName per entry of
    /// `names` (an IP address, v4 or v6, becomes an iPAddress SAN, anything else a dNSName SAN);
    /// extendedKeyUsage serverAuth; its own new ECDSA P-256 key; valid from one hour ago for
    /// `days` days; signed by this CA. libpq's `verify-full` checks the host against the SANs,
    /// so list every name and address clients use.
    ///
    /// # Errors
    /// `cn` or a name is empty, or a DNS name is not ASCII; `days` is 0 or above [`MAX_DAYS`];
    /// this CA's certificate or key cannot be parsed; signing failed.
    pub fn issue_server(&self, cn: &str, names: &[String], days: u32) -> Result<Issued> {
        let mut params = leaf_params(cn, days, ExtendedKeyUsagePurpose::ServerAuth)?;
        params.subject_alt_names = names.iter().map(|n| san(n)).collect::<Result<Vec<_>>>()?;
        self.sign(&params)
    }

    /// A client certificate for the role `user`: CN `user` (PostgreSQL's `clientcert=verify-full`
    /// compares the CN with the role name), extendedKeyUsage clientAuth, its own new ECDSA P-256
    /// key, valid from one hour ago for `days` days, signed by this CA.
    ///
    /// # Errors
    /// `user` is empty; `days` is 0 or above [`MAX_DAYS`]; this CA's certificate or key cannot be
    /// parsed; signing failed.
    pub fn issue_client(&self, user: &str, days: u32) -> Result<Issued> {
        let params = leaf_params(user, days, ExtendedKeyUsagePurpose::ClientAuth)?;
        self.sign(&params)
    }

    /// Signs `params` for a new key with this CA.
    fn sign(&self, params: &CertificateParams) -> Result<Issued> {
        let ders = pem::certificates(&self.cert_pem).context("the CA certificate")?;
        let ca_key = pem::key_pair(self.key.expose()).context("the CA key")?;
        let issuer = Issuer::from_ca_cert_der(&ders[0].clone().into(), ca_key)
            .context("cannot read the CA certificate for signing")?;
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let cert = params
            .signed_by(&key, &issuer)
            .context("cannot sign the certificate")?;
        Ok(Issued {
            cert_pem: pem::encode("CERTIFICATE", cert.der()),
            key: KeyPem(pem::encode("PRIVATE KEY", &key.serialize_der())),
        })
    }
}

/// Parameters with subject CN `cn`, valid from one hour ago for `days` days. The serial number
/// is left to rcgen, which derives it from the (always new) public key.
fn base_params(cn: &str, days: u32) -> Result<CertificateParams> {
    ensure!(!cn.is_empty(), "a certificate needs a common name");
    ensure!(
        (1..=MAX_DAYS).contains(&days),
        "validity of {days} days: expected 1 to {MAX_DAYS}"
    );
    let not_before = OffsetDateTime::now_utc() - Duration::hours(1);
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.not_before = not_before;
    params.not_after = not_before + Duration::days(i64::from(days));
    Ok(params)
}

/// An end-entity certificate's parameters: CA:FALSE, digitalSignature (ECDSA's TLS use), `eku`,
/// and the authorityKeyIdentifier that lets verifiers pick the CA.
fn leaf_params(cn: &str, days: u32, eku: ExtendedKeyUsagePurpose) -> Result<CertificateParams> {
    let mut params = base_params(cn, days)?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![eku];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

/// One subjectAltName: an IP address, or else a DNS name.
fn san(name: &str) -> Result<SanType> {
    if name.is_empty() {
        bail!("an empty name cannot be a subjectAltName");
    }
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let dns = name
        .try_into()
        .with_context(|| format!("{name:?} is not a DNS name (ASCII only)"))?;
    Ok(SanType::DnsName(dns))
}
