//! Certificates made at test time with rcgen: a CA, a server certificate
//! for 127.0.0.1 and localhost, client certificates with a subject, all
//! written as PEM files the broker and librdkafka read.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};

/// A certificate authority that signs the others.
pub struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
    /// Its certificate, PEM.
    pub pem_path: PathBuf,
}

impl Ca {
    /// A new CA named `name`, its certificate written to `dir/<name>.pem`.
    pub fn new(dir: &Path, name: &str) -> Ca {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name = dn(&[(DnType::CommonName, name)]);
        let cert = params.self_signed(&key).expect("CA signs itself");
        let pem_path = dir.join(format!("{name}.pem"));
        std::fs::write(&pem_path, cert.pem()).expect("write CA");
        Ca {
            cert,
            key,
            pem_path,
        }
    }

    /// A keystore for a broker on 127.0.0.1 (chain and key in one PEM
    /// file, Kafka's `ssl.keystore.type: PEM`), as text.
    pub fn server_keystore(&self) -> String {
        let key = KeyPair::generate().expect("key");
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()]).expect("params");
        params.distinguished_name = dn(&[(DnType::CommonName, "fjord-broker")]);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("server cert");
        format!("{}{}", cert.pem(), key.serialize_pem())
    }

    /// A client certificate with `subject` (first to last, as written in
    /// the certificate), written to `dir/<file>.crt` and `dir/<file>.key`.
    pub fn client(&self, dir: &Path, file: &str, subject: &[(DnType, &str)]) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name = dn(subject);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("client cert");
        let (crt, key_path) = (
            dir.join(format!("{file}.crt")),
            dir.join(format!("{file}.key")),
        );
        std::fs::write(&crt, cert.pem()).expect("write cert");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        (crt, key_path)
    }
}

fn dn(parts: &[(DnType, &str)]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for (kind, value) in parts {
        dn.push(kind.clone(), *value);
    }
    dn
}
