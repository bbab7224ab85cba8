//! The admin listener over TLS with client certificates
//! (`admin.ssl.client.auth: required`), with a real broker and a real
//! HTTPS client: a client without a certificate, or with one from another
//! CA, gets no answer; one with a certificate the truststore vouches for
//! is authenticated as the user its subject names (after
//! `ssl.principal.mapping.rules`), with no password.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fjord_broker::{Broker, BrokerConfig};
use fjord_http::{AdminServer, AdminState};
use fjord_plugin_host::{HostConfig, PluginHost};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    Ca { cert, key }
}

/// A certificate `ca` signed for `names` with subject `CN=cn`: (PEM, key PEM).
fn signed(ca: &Ca, names: Vec<String>, cn: &str) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(names).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    let cert = params.signed_by(&key, &ca.cert, &ca.key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn client(ca_pem: &str, identity: Option<&(String, String)>) -> ureq::Agent {
    let root = ureq::tls::Certificate::from_pem(ca_pem.as_bytes()).unwrap();
    let mut tls = ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![root])));
    if let Some((cert, key)) = identity {
        let chain = ureq::tls::Certificate::from_pem(cert.as_bytes()).unwrap();
        let key = ureq::tls::PrivateKey::from_pem(key.as_bytes()).unwrap();
        tls = tls.client_cert(Some(ureq::tls::ClientCert::new_with_certs(&[chain], key)));
    }
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .tls_config(tls.build())
        .build()
        .into()
}

async fn start(dir: &Path, trusted: &Ca) -> (Broker, AdminServer) {
    let server_ca = ca("server-ca");
    let (cert, key) = signed(&server_ca, vec!["127.0.0.1".to_owned()], "admin");
    std::fs::write(dir.join("server-ca.pem"), server_ca.cert.pem()).unwrap();
    let keystore = dir.join("admin.pem");
    std::fs::write(&keystore, format!("{cert}{key}")).unwrap();
    let truststore = dir.join("clients-ca.pem");
    std::fs::write(&truststore, trusted.cert.pem()).unwrap();
    let mut config = BrokerConfig::ephemeral(dir);
    config.admin_ssl_keystore_location = Some(keystore);
    config.admin_ssl_truststore_location = Some(truststore);
    config.admin_ssl_client_auth = Some("required".to_owned());
    config.ssl_principal_mapping_rules = Some("RULE:^CN=(.*?)$/$1/L,DEFAULT".to_owned());
    let tls = fjord_broker::admin_tls(&config).unwrap().unwrap();
    let broker = Broker::start(config).await.unwrap();
    let host = Arc::new(
        PluginHost::new(
            HostConfig {
                cache_dir: Some(dir.join("plugin-cache")),
                ..HostConfig::default()
            },
            fjord_builtins::all(),
        )
        .unwrap(),
    );
    let state = AdminState::new(broker.local(), host)
        .with_authentication(true)
        .with_tls(tls, Duration::from_secs(10));
    let admin = AdminServer::start("127.0.0.1:0", state).await.unwrap();
    (broker, admin)
}

#[test]
fn a_client_certificate_is_the_login() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let clients = ca("clients-ca");
    let (_broker, admin) = runtime.block_on(start(dir.path(), &clients));
    let server_ca = std::fs::read_to_string(dir.path().join("server-ca.pem")).unwrap();
    let url = |path: &str| format!("https://{}{path}", admin.local_addr());

    // No certificate, or one from a CA the truststore does not hold: the
    // handshake fails, nothing is answered.
    assert!(
        client(&server_ca, None)
            .get(url("/health/live"))
            .call()
            .is_err()
    );
    let stranger = signed(&ca("other-ca"), Vec::new(), "Mallory");
    assert!(
        client(&server_ca, Some(&stranger))
            .get(url("/health/live"))
            .call()
            .is_err()
    );

    // Alice's certificate logs her in, no password asked.
    let alice = client(&server_ca, Some(&signed(&clients, Vec::new(), "Alice")));
    let mut session = alice.get(url("/api/v1/session")).call().unwrap();
    let body: serde_json::Value =
        serde_json::from_str(&session.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!(body["principal"], "User:alice", "{body}");
    assert_eq!(body["authentication_required"], true);
    let topics = alice.get(url("/api/v1/topics")).call().unwrap();
    assert_eq!(topics.status().as_u16(), 200);
    // The same client with a wrong password is refused: bad credentials
    // are never ignored.
    let refused = alice
        .get(url("/api/v1/topics"))
        .header("Authorization", "Basic YWxpY2U6d3Jvbmc=")
        .call()
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    runtime.block_on(admin.shutdown());
}
