//! SCRAM-SHA-256 password verifiers, computed on the client (RFC 5802/7677, PostgreSQL's
//! `rolpassword` format `SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>`).
//!
//! The role password is sent to the server only as a verifier, so the clear text never reaches
//! a server log. `matches` lets `init` tell whether an existing role already has the inventory's
//! password, so that a re-run changes nothing.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

const ITERATIONS: u32 = 4096;

fn prepare(password: &str) -> Vec<u8> {
    // PostgreSQL applies SASLprep when it can and uses the raw bytes otherwise.
    match stringprep::saslprep(password) {
        Ok(p) => p.into_owned().into_bytes(),
        Err(_) => password.as_bytes().to_vec(),
    }
}

fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key size");
    m.update(msg);
    m.finalize().into_bytes().into()
}

fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut block = salt.to_vec();
    block.extend_from_slice(&[0, 0, 0, 1]);
    let mut prev = hmac(password, &block);
    let mut out = prev;
    for _ in 1..iterations {
        prev = hmac(password, &prev);
        for (o, p) in out.iter_mut().zip(prev) {
            *o ^= p;
        }
    }
    out
}

fn verifier_with(password: &str, salt: &[u8], iterations: u32) -> String {
    let salted = salted_password(&prepare(password), salt, iterations);
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = Sha256::digest(client_key);
    let server_key = hmac(&salted, b"Server Key");
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        STANDARD.encode(salt),
        STANDARD.encode(stored_key),
        STANDARD.encode(server_key)
    )
}

/// A new verifier for `password` with a random 16-byte salt.
pub fn verifier(password: &str) -> String {
    let salt: [u8; 16] = rand::random();
    verifier_with(password, &salt, ITERATIONS)
}

/// Does the stored `rolpassword` verify `password`? False for md5 or malformed values.
pub fn matches(stored: &str, password: &str) -> bool {
    let Some(rest) = stored.strip_prefix("SCRAM-SHA-256$") else {
        return false;
    };
    let Some((iter_salt, _keys)) = rest.split_once('$') else {
        return false;
    };
    let Some((iter, salt)) = iter_salt.split_once(':') else {
        return false;
    };
    let (Ok(iterations), Ok(salt)) = (iter.parse::<u32>(), STANDARD.decode(salt)) else {
        return false;
    };
    if iterations == 0 || iterations > 10_000_000 {
        return false;
    }
    verifier_with(password, &salt, iterations) == stored
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_verifier_verifies() {
        let v = verifier("s3cret:pw");
        assert!(v.starts_with("SCRAM-SHA-256$4096:"));
        assert!(!v.contains("s3cret"));
        assert!(matches(&v, "s3cret:pw"));
        assert!(!matches(&v, "other"));
    }

    #[test]
    fn agrees_with_postgres_protocol() {
        let v = postgres_protocol::password::scram_sha_256(b"canary-Pa55");
        assert!(matches(&v, "canary-Pa55"));
        assert!(!matches(&v, "canary-Pa56"));
    }

    #[test]
    fn rejects_md5_and_garbage() {
        assert!(!matches("md5abcdef", "x"));
        assert!(!matches("SCRAM-SHA-256$x:y$z", "x"));
    }
}
