//! PEM text to DER and back (RFC 7468): certificates and PKCS#8 private keys. Reading goes
//! through x509-parser's PEM reader (text around the blocks is skipped, as openssl does);
//! writing is base64 in 64-character lines.

use anyhow::{anyhow, bail, Context as _, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rcgen::KeyPair;
use x509_parser::pem::Pem;

/// `der` as one PEM block labelled `label`, ending with a newline.
pub(super) fn encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        // base64 is ASCII, so every chunk is UTF-8.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Every PEM block in `text`, in order.
fn blocks(text: &str) -> Result<Vec<Pem>> {
    Pem::iter_from_buffer(text.as_bytes())
        .enumerate()
        .map(|(i, b)| b.map_err(|e| anyhow!("PEM block {} is malformed: {e}", i + 1)))
        .collect()
}

/// The DER of every `CERTIFICATE` block in `text`, in order; other blocks are skipped.
///
/// # Errors
/// A block is malformed (bad base64, no END line); there is no certificate block.
pub(super) fn certificates(text: &str) -> Result<Vec<Vec<u8>>> {
    let ders: Vec<Vec<u8>> = blocks(text)?
        .into_iter()
        .filter(|b| b.label == "CERTIFICATE")
        .map(|b| b.contents)
        .collect();
    if ders.is_empty() {
        bail!("no PEM certificate (-----BEGIN CERTIFICATE-----) found");
    }
    Ok(ders)
}

/// The key pair of the first private-key block in `text`.
///
/// # Errors
/// No private key block; the key is encrypted, or in the older SEC1/PKCS#1 form (`EC PRIVATE
/// KEY`, `RSA PRIVATE KEY`) that ring cannot read; it is not a key ring can sign with (ECDSA
/// P-256/P-384, Ed25519, RSA of 2048 bits or more).
pub(super) fn key_pair(text: &str) -> Result<KeyPair> {
    let Some(block) = blocks(text)?
        .into_iter()
        .find(|b| b.label.ends_with("PRIVATE KEY"))
    else {
        bail!("no PEM private key (-----BEGIN PRIVATE KEY-----) found");
    };
    match block.label.as_str() {
        "PRIVATE KEY" => {}
        "ENCRYPTED PRIVATE KEY" => {
            bail!("the private key is encrypted; pgrepl needs it unencrypted")
        }
        other => bail!(
            "the private key is in the {other} form; pgrepl reads PKCS#8 only: convert it with \
             `openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pkcs8`"
        ),
    }
    KeyPair::try_from(block.contents.as_slice()).context(
        "the private key cannot be read (not ECDSA P-256/P-384, Ed25519 or RSA ≥ 2048 bits)",
    )
}
