use super::*;

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

fn server(ca: &Ca) -> Issued {
    let names = ["pg1".to_string(), "198.18.1.2".to_string()];
    ca.issue_server("pg1", &names, 30).unwrap()
}

fn one(pem: &str) -> CertInfo {
    let mut infos = read_certs(pem).unwrap();
    assert_eq!(infos.len(), 1);
    infos.remove(0)
}

fn info(cn: Option<&str>, dns: &[&str], ips: &[&str]) -> CertInfo {
    CertInfo {
        subject_cn: cn.map(str::to_string),
        issuer_cn: None,
        dns_names: dns.iter().map(|s| s.to_string()).collect(),
        ip_addresses: ips.iter().map(|s| s.to_string()).collect(),
        not_before: 0,
        not_after: 0,
        is_ca: false,
        sha256_fingerprint: String::new(),
    }
}

#[test]
fn generated_ca_reads_back_as_a_ca() {
    let ca = Ca::generate("main", 3650).unwrap();
    let i = one(&ca.cert_pem);
    assert_eq!(i.subject_cn.as_deref(), Some("pgrepl CA main"));
    assert_eq!(i.issuer_cn.as_deref(), Some("pgrepl CA main"));
    assert!(i.is_ca);
    assert!(i.dns_names.is_empty() && i.ip_addresses.is_empty());
    assert!((i.not_before - (now() - 3600)).abs() < 60);
    assert_eq!(i.not_after - i.not_before, 3650 * 86_400);
    assert_eq!(i.sha256_fingerprint.len(), 64);
    assert!(i
        .sha256_fingerprint
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    assert!(ca.key.expose().starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert!(signed_by(&ca.cert_pem, &ca.cert_pem).unwrap());
    assert!(key_matches(&ca.cert_pem, ca.key.expose()).unwrap());
}

#[test]
fn server_certificate_has_its_names_and_validity() {
    let ca = Ca::generate("main", 365).unwrap();
    let s = server(&ca);
    let i = one(&s.cert_pem);
    assert_eq!(i.subject_cn.as_deref(), Some("pg1"));
    assert_eq!(i.issuer_cn.as_deref(), Some("pgrepl CA main"));
    assert_eq!(i.dns_names, ["pg1"]);
    assert_eq!(i.ip_addresses, ["198.18.1.2"]);
    assert!(!i.is_ca);
    assert!((i.not_before - (now() - 3600)).abs() < 60);
    assert_eq!(i.not_after - i.not_before, 30 * 86_400);
    assert!(covers(&i, "pg1") && covers(&i, "PG1") && covers(&i, "198.18.1.2"));
    assert!(!covers(&i, "pg2") && !covers(&i, "198.18.1.3"));
}

#[test]
fn client_certificate_names_the_role() {
    let ca = Ca::generate("main", 365).unwrap();
    let c = ca.issue_client("replicator", 30).unwrap();
    let i = one(&c.cert_pem);
    assert_eq!(i.subject_cn.as_deref(), Some("replicator"));
    assert!(i.dns_names.is_empty() && i.ip_addresses.is_empty() && !i.is_ca);
    assert!(signed_by(&c.cert_pem, &ca.cert_pem).unwrap());
    assert!(key_matches(&c.cert_pem, c.key.expose()).unwrap());
}

#[test]
fn covers_follows_verify_full() {
    let sans = info(
        Some("db.example.com"),
        &["*.pg.example.com", "Pg1"],
        &["10.0.0.1", "::1"],
    );
    assert!(covers(&sans, "a.pg.example.com"));
    assert!(covers(&sans, "A.PG.Example.COM"));
    assert!(
        !covers(&sans, "a.b.pg.example.com"),
        "a wildcard is one label"
    );
    assert!(!covers(&sans, "pg.example.com"), "a wildcard needs a label");
    assert!(!covers(&sans, ".pg.example.com"));
    assert!(covers(&sans, "pg1"));
    assert!(covers(&sans, "10.0.0.1"));
    assert!(covers(&sans, "0:0::1"), "IPv6 compared as an address");
    assert!(!covers(&sans, "10.0.0.2"));
    assert!(
        !covers(&sans, "db.example.com"),
        "the CN is ignored when SANs exist"
    );
    let only_cn = info(Some("db.example.com"), &[], &[]);
    assert!(covers(&only_cn, "DB.example.com"));
    assert!(!covers(&only_cn, "other.example.com"));
    assert!(covers(&info(Some("10.0.0.1"), &[], &[]), "10.0.0.1"));
    assert!(!covers(&info(None, &[], &[]), "db.example.com"));
    let dns_only = info(None, &["10.0.0.1"], &[]);
    assert!(
        !covers(&dns_only, "10.0.0.1"),
        "an IP host matches only IP SANs"
    );
    let ip_only = info(None, &[], &["10.0.0.1"]);
    assert!(!covers(&ip_only, "pg1"));
}

#[test]
fn signed_by_tells_its_ca_from_another() {
    let ca = Ca::generate("main", 365).unwrap();
    let other = Ca::generate("other", 365).unwrap();
    let s = server(&ca);
    assert!(signed_by(&s.cert_pem, &ca.cert_pem).unwrap());
    assert!(!signed_by(&s.cert_pem, &other.cert_pem).unwrap());
    let bundle = format!("{}{}", other.cert_pem, ca.cert_pem);
    assert!(signed_by(&s.cert_pem, &bundle).unwrap());
    // Same name, other key: the name matches, the signature does not.
    let twin = Ca::generate("main", 365).unwrap();
    assert!(!signed_by(&s.cert_pem, &twin.cert_pem).unwrap());
    assert!(signed_by(&s.cert_pem, "no certificate here").is_err());
}

#[test]
fn key_matches_only_its_certificate() {
    let ca = Ca::generate("main", 365).unwrap();
    let s = server(&ca);
    assert!(key_matches(&s.cert_pem, s.key.expose()).unwrap());
    assert!(!key_matches(&s.cert_pem, ca.key.expose()).unwrap());
    assert!(
        key_matches(&s.cert_pem, &s.cert_pem).is_err(),
        "no key in a certificate"
    );
    let sec1 = s.key.expose().replace("PRIVATE KEY", "EC PRIVATE KEY");
    let err = key_matches(&s.cert_pem, &sec1).unwrap_err().to_string();
    assert!(err.contains("openssl pkcs8"), "{err}");
}

#[test]
fn load_round_trips_and_refuses_a_foreign_key() {
    let ca = Ca::generate("main", 365).unwrap();
    let loaded = Ca::load(&ca.cert_pem, ca.key.expose()).unwrap();
    assert_eq!(loaded.cert_pem, ca.cert_pem);
    let s = server(&loaded);
    assert!(signed_by(&s.cert_pem, &ca.cert_pem).unwrap());
    let other = Ca::generate("other", 365).unwrap();
    let err = Ca::load(&ca.cert_pem, other.key.expose()).unwrap_err();
    assert!(err.to_string().contains("does not belong"), "{err:#}");
    let err = Ca::load(&s.cert_pem, s.key.expose()).unwrap_err();
    assert!(err.to_string().contains("not a CA"), "{err:#}");
    let two = format!("{}{}", ca.cert_pem, other.cert_pem);
    assert!(Ca::load(&two, ca.key.expose()).is_err());
    assert!(Ca::load("garbage", ca.key.expose()).is_err());
}

#[test]
fn a_bundle_reads_in_order() {
    let a = Ca::generate("a", 365).unwrap();
    let b = Ca::generate("b", 365).unwrap();
    let bundle = format!("# a\n{}\n# b\n{}", a.cert_pem, b.cert_pem);
    let infos = read_certs(&bundle).unwrap();
    let cns: Vec<_> = infos.iter().map(|i| i.subject_cn.as_deref()).collect();
    assert_eq!(cns, [Some("pgrepl CA a"), Some("pgrepl CA b")]);
    assert_ne!(infos[0].sha256_fingerprint, infos[1].sha256_fingerprint);
}

#[test]
fn unreadable_input_is_an_error() {
    assert!(read_certs("").is_err());
    assert!(read_certs("-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n").is_err());
    let junk = pem::encode("CERTIFICATE", b"not der");
    assert!(read_certs(&junk).is_err());
    let cut = "-----BEGIN CERTIFICATE-----\nMIIB\n";
    assert!(read_certs(cut).is_err());
}

#[test]
fn arguments_are_checked() {
    assert!(Ca::generate("", 365).is_err());
    assert!(Ca::generate("main", 0).is_err());
    assert!(Ca::generate("main", MAX_DAYS + 1).is_err());
    let ca = Ca::generate("main", 365).unwrap();
    assert!(ca.issue_server("", &[], 30).is_err());
    assert!(ca.issue_server("pg1", &[String::new()], 30).is_err());
    assert!(ca.issue_server("pg1", &["hôte".to_string()], 30).is_err());
    assert!(ca.issue_client("", 30).is_err());
    let v6 = ca.issue_server("pg1", &["fd00::1".to_string()], 1).unwrap();
    assert_eq!(one(&v6.cert_pem).ip_addresses, ["fd00::1"]);
}

#[test]
fn debug_never_shows_a_key() {
    let ca = Ca::generate("main", 365).unwrap();
    let s = server(&ca);
    for shown in [format!("{ca:?}"), format!("{s:?}"), format!("{:?}", s.key)] {
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
    }
}
