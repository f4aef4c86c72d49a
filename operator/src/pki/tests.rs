use k8s_openapi::ByteString;

use super::*;

fn der(pem: &str) -> Vec<u8> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("a PEM certificate");
    block.contents
}

/// The issuer's subject of a PEM certificate, and a CA's own subject key id.
fn issuer_key_id(pem: &str) -> Vec<u8> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("a PEM certificate");
    let cert = block.parse_x509().expect("an X.509 certificate");
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::AuthorityKeyIdentifier(a) => {
                a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        })
        .expect("an authority key identifier")
}

fn subject_key_id(pem: &str) -> Vec<u8> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).expect("a PEM certificate");
    let cert = block.parse_x509().expect("an X.509 certificate");
    cert.extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            x509_parser::extensions::ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
        .expect("a subject key identifier")
}

#[test]
fn a_gateway_certificate_names_its_gateway_and_only_it() {
    let ca = Authority::generate().expect("a CA");
    let issued = ca.issue_gateway("team-a/edge").expect("a certificate");
    assert_eq!(gateway_of(&der(&issued.cert_pem)).as_deref(), Some("team-a/edge"));
    let server = ca
        .issue_server(&["legate-xds.legate-system.svc".into(), "127.0.0.1".into()])
        .expect("a server certificate");
    assert_eq!(
        gateway_of(&der(&server.cert_pem)),
        None,
        "a server certificate names no Gateway"
    );
}

#[test]
fn leaves_never_outlive_their_ca_and_expiring_ones_are_renewed() {
    let ca = Authority::generate().expect("a CA");
    let issued = ca.issue_gateway("a/b").expect("a certificate");
    assert!(issued.not_after <= ca.not_after());
    let fresh = rfc3339(issued.not_after).expect("a time within years 0 to 9999");
    assert!(!needs_renewal(Some(&fresh)), "a fresh certificate is kept");
    let soon = rfc3339(OffsetDateTime::now_utc() + Duration::days(2)).expect("a time within years 0 to 9999");
    assert!(needs_renewal(Some(&soon)));
    assert!(needs_renewal(None), "no record of expiry: reissue");
    assert!(!needs_renewal_within(Some(&soon), Duration::days(1)));
}

#[test]
fn a_broken_ca_secret_says_what_it_lacks() {
    let lifetimes = Lifetimes::default();
    let ca = Authority::generate().expect("a CA");
    let mut secret = ca.to_secret("legate-system", None).expect("a CA Secret");
    Authority::from_secret(&secret, &lifetimes).expect("a CA Secret reads back");
    if let Some(data) = secret.data.as_mut() {
        data.insert("ca.key".into(), ByteString(b"not a key".to_vec()));
    }
    assert!(matches!(
        Authority::from_secret(&secret, &lifetimes),
        Err(PkiError::UnusableCa { .. })
    ));
    if let Some(data) = secret.data.as_mut() {
        data.remove("ca.key");
    }
    let error = Authority::from_secret(&secret, &lifetimes).expect_err("no key, no CA");
    assert!(error.to_string().contains("lacks a PEM ca.key"), "{error}");
}

#[test]
fn private_keys_never_reach_debug_output() {
    let ca = Authority::generate().expect("a CA");
    let issued = ca.issue_gateway("a/b").expect("a certificate");
    assert!(!format!("{issued:?}").contains("PRIVATE KEY"));
    assert!(!format!("{ca:?}").contains("PRIVATE KEY"));
}

#[test]
fn a_rotation_trusts_the_next_ca_first_signs_with_it_later_and_drops_the_old_one_last() {
    let lifetimes = Lifetimes::default();
    let now = OffsetDateTime::now_utc();
    let old = Authority::generate_for(&lifetimes, now).expect("a CA");
    let old_signer = old.signer_pem().to_string();

    let prepared = old.prepared(&lifetimes, now).expect("a next CA");
    assert_eq!(prepared.signer_pem(), old_signer, "preparing changes no signer");
    assert_ne!(prepared.bundle_hash(), old.bundle_hash(), "the bundle changes");
    assert_eq!(split_pems(prepared.bundle_pem()).len(), 2);
    let leaf = prepared.issue_gateway("a/b").expect("a certificate");
    assert_eq!(issuer_key_id(&leaf.cert_pem), subject_key_id(&old_signer));

    let promoted = prepared.promoted(now).expect("a promotion");
    assert_ne!(promoted.signer_pem(), old_signer, "the next CA signs");
    assert!(prepared.bundle_pem().contains(promoted.signer_pem().trim()));
    assert_eq!(
        promoted.bundle_hash(),
        prepared.bundle_hash(),
        "promotion keeps the bundle: no Gateway is reissued for it"
    );
    let leaf = promoted.issue_gateway("a/b").expect("a certificate");
    assert_eq!(
        issuer_key_id(&leaf.cert_pem),
        subject_key_id(promoted.signer_pem())
    );
    assert_eq!(promoted.times().promoted_at, Some(now));

    let kept = promoted.retired(&lifetimes, now).expect("a retirement");
    assert_eq!(kept.bundle_hash(), promoted.bundle_hash(), "too early to retire");
    let later = now + lifetimes.leaf_validity + lifetimes.check_interval;
    let retired = promoted.retired(&lifetimes, later).expect("a retirement");
    assert_eq!(
        split_pems(retired.bundle_pem()),
        [normalized(promoted.signer_pem())]
    );
}

#[test]
fn every_stage_survives_the_secret() {
    let lifetimes = Lifetimes::default();
    let now = OffsetDateTime::now_utc();
    let prepared = Authority::generate_for(&lifetimes, now)
        .and_then(|ca| ca.prepared(&lifetimes, now))
        .expect("a prepared rotation");
    let promoted = prepared.promoted(now).expect("a promotion");
    for ca in [&prepared, &promoted] {
        let secret = ca.to_secret("legate-system", None).expect("a CA Secret");
        let back = Authority::from_secret(&secret, &lifetimes).expect("it reads back");
        assert_eq!(back.bundle_pem(), ca.bundle_pem());
        assert_eq!(back.signer_pem(), ca.signer_pem());
        assert_eq!(back.retiring_not_after(), ca.retiring_not_after());
        // RFC 3339 in the annotations keeps whole seconds and more.
        let (a, b) = (back.times(), ca.times());
        assert_eq!(a.current_not_after, b.current_not_after);
        assert_eq!(a.next_published_at, b.next_published_at);
        assert_eq!(a.promoted_at, b.promoted_at);
    }
}

#[test]
fn a_secret_from_before_staged_rotation_keeps_trusting_its_previous_ca() {
    let lifetimes = Lifetimes::default();
    let now = OffsetDateTime::now_utc();
    let previous = Authority::generate_for(&lifetimes, now).expect("a CA");
    let current = Authority::generate_for(&lifetimes, now).expect("a CA");
    let mut secret = current.to_secret("legate-system", None).expect("a CA Secret");
    if let Some(data) = secret.data.as_mut() {
        data.remove("retiring.crt");
        data.insert(
            "ca-bundle.crt".into(),
            ByteString(format!("{}{}", current.signer_pem(), previous.signer_pem()).into_bytes()),
        );
    }
    let read = Authority::from_secret(&secret, &lifetimes).expect("it reads");
    assert_eq!(read.retiring_not_after(), [previous.not_after()]);
    assert_eq!(read.signer_pem(), current.signer_pem());
}
