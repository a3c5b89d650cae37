//! Unit tests of `tls:`: the default (pgrepl's CA beside the inventory), `off`, the user's own
//! certificates, and what is refused with its position.

use super::*;

const BASE: &str = "cluster: main
postgres:
  version: 15
replication:
  password_env: PGREPL_TEST_PW
hosts:
  - name: pg1
    address: 10.0.0.1
    role: primary
";

fn with(extra: &str) -> Result<Inventory, Error> {
    parse(&format!("{BASE}{extra}"), Path::new("/etc/pgrepl/inv.yml"))
}

fn messages(extra: &str) -> Vec<String> {
    match with(extra) {
        Err(Error::Inventory { issues, .. }) => issues
            .into_iter()
            .map(|i| format!("{}:{} {}", i.line, i.column, i.message))
            .collect(),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("accepted:\n{extra}"),
    }
}

#[test]
fn tls_is_on_by_default_with_pgrepls_ca_beside_the_inventory() {
    let inv = with("").unwrap();
    let Tls::Issued(i) = &inv.tls else {
        panic!("{:?}", inv.tls)
    };
    assert_eq!(i.ca_cert, Path::new("/etc/pgrepl/main.ca.crt"));
    assert_eq!(i.ca_key, Path::new("/etc/pgrepl/main.ca.key"));
    assert_eq!(
        (i.server_days, i.ca_days, i.client_certs),
        (365, 3650, false)
    );
    let h = inv.host("pg1").unwrap();
    assert_eq!(h.tls_dir, format!("{}.tls", h.data_dir));
    assert!(inv
        .tls_conninfo(h)
        .contains(&("channel_binding", "require".to_string())));
}

#[test]
fn off_and_false_turn_it_off() {
    for off in ["tls: off\n", "tls: false\n"] {
        assert_eq!(with(off).unwrap().tls, Tls::Off, "{off}");
    }
    assert!(with("tls: off\n")
        .unwrap()
        .tls_conninfo(&with("").unwrap().hosts[0])
        .is_empty());
}

#[test]
fn what_is_refused_is_named_with_its_position() {
    assert_eq!(
        messages("tls: {ca_cert: ./a.crt}\n"),
        ["10:16 tls.ca_cert and tls.ca_key go together"]
    );
    assert_eq!(
        messages("tls: {server_days: 0}\n"),
        ["10:20 tls.server_days 0 is out of range"]
    );
    assert_eq!(
        messages("tls: {ca_file: ./ca.crt}\n"),
        ["10:6 tls.ca_file needs tls.certificates"]
    );
    assert_eq!(
        messages("tls:\n  ca_file: ./ca.crt\n  client_certs: true\n  certificates:\n    pg9: {cert: ./a, key: ./b}\n"),
        [
            "12:17 tls.client_certs is for certificates pgrepl issues, not with tls.certificates",
            "14:5 tls.certificates has no certificate for host pg1",
            "14:10 tls.certificates names pg9, which is not a host",
        ]
    );
    assert!(messages("tls: true\n")[0].contains("write `tls: off`"));
}

#[test]
fn pgrepl_owns_the_ssl_settings_while_tls_is_on() {
    let base = BASE.replace(
        "  version: 15\n",
        "  version: 15\n  settings: {ssl: 'on', ssl_min_protocol_version: TLSv1.1}\n",
    );
    let bad = parse(&base, Path::new("i.yml")).unwrap_err().to_string();
    assert!(
        bad.contains("ssl is set by pgrepl while TLS is on"),
        "{bad}"
    );
    assert!(bad.contains("below TLS 1.2"), "{bad}");
    let off = parse(&format!("{base}tls: off\n"), Path::new("i.yml"));
    assert!(off.is_ok(), "with tls: off the settings are the user's");
}
