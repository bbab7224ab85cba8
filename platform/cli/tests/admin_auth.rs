//! The admin HTTP API of a real `fjord server` secured as docs/security.md
//! says: HTTPS (`admin.ssl.keystore.location`, certificates made here with
//! rcgen), logins against the SCRAM users (on by default once an
//! authorizer is set), the same ACLs as the Kafka port, the console's
//! session cookie, the failed-login limit; and the CLI against it: `fjord
//! pipeline` over https:// with `--admin-ca` and the `--sasl-*` login,
//! `fjord topic` (librdkafka), `fjord user` and `fjord acl` (raw requests)
//! over a SASL_SSL Kafka listener with librdkafka's TLS flags.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use common::{fjord_at, free_port};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use serde_json::Value;

struct Secured {
    child: Child,
    plain: String,
    tls: String,
    admin: String,
    ca: String,
}

impl Drop for Secured {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CA, and a certificate it signed for 127.0.0.1 and localhost with its
/// key: (ca.pem, keystore.pem) in `dir`.
fn certificates(dir: &Path) -> (String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "admin-test-ca");
    let ca = params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let ca_path = dir.join("ca.pem");
    let keystore = dir.join("broker.pem");
    std::fs::write(&ca_path, ca.pem()).unwrap();
    std::fs::write(
        &keystore,
        format!("{}{}", server.pem(), key.serialize_pem()),
    )
    .unwrap();
    (
        ca_path.display().to_string(),
        keystore.display().to_string(),
    )
}

fn start(dir: &Path) -> Secured {
    start_with(dir, "")
}

/// [`start`], with more settings for fjord.yaml.
fn start_with(dir: &Path, more: &str) -> Secured {
    let (ca, keystore) = certificates(dir);
    let config = dir.join("fjord.yaml");
    std::fs::write(
        &config,
        format!(
            "authorizer.class.name: acl\nssl.keystore.location: {keystore}\n\
             admin.ssl.keystore.location: {keystore}\n{more}"
        ),
    )
    .unwrap();
    let ports: Vec<u16> = std::iter::repeat_with(free_port).take(3).collect();
    let (plain, tls, admin) = (
        format!("127.0.0.1:{}", ports[0]),
        format!("127.0.0.1:{}", ports[1]),
        format!("127.0.0.1:{}", ports[2]),
    );
    let child = Command::new(env!("CARGO_BIN_EXE_fjord"))
        .arg("server")
        .arg("--config")
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args([
            "--listeners",
            &format!("PLAINTEXT://{plain},SASL_SSL://{tls}"),
        ])
        .args(["--admin-listen", &admin])
        .args(["--admin-user", "admin", "--admin-password", "admin-pw"])
        .args(["--log", "warn"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut server = Secured {
        child,
        plain,
        tls,
        admin,
        ca,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    for address in [&server.plain, &server.tls, &server.admin] {
        while std::net::TcpStream::connect(address).is_err() {
            assert!(Instant::now() < deadline, "{address} did not open");
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("fjord server exited: {status}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    server
}

/// An HTTPS client that trusts the test CA.
fn https(ca: &str) -> ureq::Agent {
    let pem = std::fs::read(ca).unwrap();
    let cert = ureq::tls::Certificate::from_pem(&pem).unwrap();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::Specific(Arc::new(vec![cert])))
                .build(),
        )
        .build()
        .into()
}

fn basic(user: &str, password: &str) -> String {
    let pair = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

struct Answer {
    status: u16,
    body: Value,
    headers: ureq::http::HeaderMap,
}

fn answer(response: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
    let mut response = response.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    Answer {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        headers,
    }
}

impl Secured {
    fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.admin)
    }

    fn get(&self, agent: &ureq::Agent, path: &str, login: Option<(&str, &str)>) -> Answer {
        let mut request = agent.get(self.url(path));
        if let Some((user, password)) = login {
            request = request.header("Authorization", basic(user, password));
        }
        answer(request.call())
    }

    /// A client command against this server's SASL_SSL listener, as the
    /// admin (`fjord user` and `fjord acl` send raw requests over rustls).
    fn admin_command(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend(["--sasl-user", "admin", "--sasl-password", "admin-pw"]);
        all.extend([
            "--security-protocol",
            "SASL_SSL",
            "--ssl-ca-location",
            &self.ca,
        ]);
        let (ok, out) = fjord_at(&all, &self.tls, &self.admin);
        assert!(ok, "fjord {}: {out}", args.join(" "));
        out
    }
}

#[test]
fn the_admin_api_over_https_needs_a_login_and_applies_the_acls() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let agent = https(&server.ca);

    // Health checks stay open; everything else needs a login.
    assert_eq!(server.get(&agent, "/health/live", None).status, 200);
    let refused = server.get(&agent, "/api/v1/topics", None);
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert_eq!(
        refused.headers.get("www-authenticate").unwrap(),
        "Basic realm=\"fjord\", charset=\"UTF-8\""
    );
    let wrong = server.get(&agent, "/api/v1/topics", Some(("admin", "guess")));
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(wrong.headers.contains_key("www-authenticate"));
    // The console's calls get no challenge (no browser dialog).
    let console = answer(
        agent
            .get(server.url("/api/v1/topics"))
            .header("X-Fjord-Console", "1")
            .call(),
    );
    assert_eq!(console.status, 401);
    assert!(!console.headers.contains_key("www-authenticate"));
    // /metrics is DESCRIBE on the cluster's too.
    assert_eq!(server.get(&agent, "/metrics", None).status, 401);
    assert_eq!(
        server
            .get(&agent, "/metrics", Some(("admin", "admin-pw")))
            .status,
        200
    );

    // Plain HTTP on the HTTPS port gets nothing.
    let plain = common::http()
        .get(format!("http://{}/health/live", server.admin))
        .call();
    assert!(
        plain.is_err() || plain.unwrap().status().as_u16() >= 400,
        "plain HTTP answered on the TLS port"
    );

    // The admin (a super user) may do anything.
    let created = answer(
        agent
            .post(server.url("/api/v1/topics"))
            .header("Authorization", basic("admin", "admin-pw"))
            .header("Content-Type", "application/json")
            .send(r#"{"name": "orders"}"#),
    );
    assert_eq!(created.status, 201, "{}", created.body);

    // Bob, a user without ACLs, sees nothing and is told why.
    server.admin_command(&["user", "create", "bob", "--password", "bob-pw-1"]);
    let bob = Some(("bob", "bob-pw-1"));
    let listed = server.get(&agent, "/api/v1/topics", bob);
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body, serde_json::json!([]));
    let described = server.get(&agent, "/api/v1/topics/orders", bob);
    assert_eq!(described.status, 403);
    assert_eq!(
        described.body["error"],
        "User:bob may not DESCRIBE topic \"orders\": no ACL allows it"
    );
    assert_eq!(described.body["kafka_error"], "TOPIC_AUTHORIZATION_FAILED");
    let cluster = server.get(&agent, "/api/v1/cluster", bob);
    assert_eq!(cluster.status, 403);
    assert_eq!(cluster.body["kafka_error"], "CLUSTER_AUTHORIZATION_FAILED");

    // An ACL made with `fjord acl` applies to the admin API at once.
    server.admin_command(&[
        "acl",
        "create",
        "--allow-principal",
        "User:bob",
        "--operation",
        "describe",
        "--topic",
        "orders",
    ]);
    let listed = server.get(&agent, "/api/v1/topics", bob);
    let names: Vec<&str> = listed
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["orders"]);
    assert_eq!(server.get(&agent, "/api/v1/topics/orders", bob).status, 200);
    let deleted = answer(
        agent
            .delete(server.url("/api/v1/topics/orders"))
            .header("Authorization", basic("bob", "bob-pw-1"))
            .header("Content-Type", "application/json")
            .call(),
    );
    assert_eq!(deleted.status, 403);
    assert!(
        deleted.body["error"]
            .as_str()
            .unwrap()
            .contains("may not DELETE topic"),
        "{}",
        deleted.body
    );

    // A changed password: the old one is refused at once (the cache of
    // successful logins is keyed by the stored credential).
    server.admin_command(&["user", "create", "bob", "--password", "bob-pw-2"]);
    assert_eq!(server.get(&agent, "/api/v1/topics", bob).status, 401);
    assert_eq!(
        server
            .get(&agent, "/api/v1/topics", Some(("bob", "bob-pw-2")))
            .status,
        200
    );

    // Guessing is limited per user and address, as SASL's is.
    let statuses: Vec<u16> = (0..7)
        .map(|i| {
            server
                .get(
                    &agent,
                    "/api/v1/topics",
                    Some(("mallory", &format!("guess{i}"))),
                )
                .status
        })
        .collect();
    assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
    assert_eq!(statuses[6], 429, "{statuses:?}");

    // The console's login: a session cookie, HttpOnly, SameSite=Strict,
    // Secure on HTTPS; it works like Basic until logout.
    let origin = format!("https://{}", server.admin);
    // An http:// page may not drive the HTTPS API.
    let foreign = answer(
        agent
            .post(server.url("/api/v1/session"))
            .header("Origin", &format!("http://{}", server.admin))
            .header("Content-Type", "application/json")
            .send(r#"{"user": "admin", "password": "admin-pw"}"#),
    );
    assert_eq!(foreign.status, 403, "{}", foreign.body);
    let bad = answer(
        agent
            .post(server.url("/api/v1/session"))
            .header("Origin", &origin)
            .header("Content-Type", "application/json")
            .send(r#"{"user": "admin", "password": "nope"}"#),
    );
    assert_eq!(bad.status, 401);
    let login = answer(
        agent
            .post(server.url("/api/v1/session"))
            .header("Origin", &origin)
            .header("Content-Type", "application/json")
            .send(r#"{"user": "admin", "password": "admin-pw"}"#),
    );
    assert_eq!(login.status, 200, "{}", login.body);
    assert_eq!(login.body["principal"], "User:admin");
    let cookie = login
        .headers
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let session = cookie.split(';').next().unwrap().to_owned();
    let with_cookie = |path: &str| {
        answer(
            agent
                .get(server.url(path))
                .header("Cookie", &session)
                .call(),
        )
    };
    assert_eq!(with_cookie("/api/v1/topics").status, 200);
    assert_eq!(
        with_cookie("/api/v1/session").body["principal"],
        "User:admin"
    );
    let out = answer(
        agent
            .delete(server.url("/api/v1/session"))
            .header("Cookie", &session)
            .header("Origin", &origin)
            .header("Content-Type", "application/json")
            .call(),
    );
    assert_eq!(out.status, 204);
    assert_eq!(with_cookie("/api/v1/topics").status, 401);

    // The CLI: https:// with --admin-ca, logged in with --sasl-*.
    let https_admin = format!("https://{}", server.admin);
    let pause = |login: &[&str], ca: bool| {
        let mut args = vec!["pipeline", "pause", "nothing", "--admin", &https_admin];
        if ca {
            args.extend(["--admin-ca", &server.ca]);
        }
        args.extend(login);
        fjord_at(&args, &server.plain, &server.admin)
    };
    let (ok, out) = pause(&[], true);
    assert!(!ok && out.contains("HTTP 401"), "{out}");
    let (ok, out) = pause(
        &["--sasl-user", "admin", "--sasl-password", "admin-pw"],
        true,
    );
    assert!(
        !ok && !out.contains("HTTP 401") && out.contains("nothing"),
        "{out}"
    );
    let (ok, out) = pause(
        &["--sasl-user", "admin", "--sasl-password", "admin-pw"],
        false,
    );
    assert!(!ok && out.contains("cannot reach the admin API"), "{out}");

    // The Kafka commands over SASL_SSL with librdkafka's TLS flags.
    let (ok, out) = fjord_at(
        &[
            "topic",
            "create",
            "over-tls",
            "-b",
            &server.tls,
            "--security-protocol",
            "SASL_SSL",
            "--ssl-ca-location",
            &server.ca,
            "--sasl-user",
            "admin",
            "--sasl-password",
            "admin-pw",
        ],
        &server.tls,
        &server.admin,
    );
    assert!(ok, "{out}");
    let listed = server.get(&agent, "/api/v1/topics", Some(("admin", "admin-pw")));
    assert!(
        listed
            .body
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "over-tls"),
        "{}",
        listed.body
    );
    // `fjord cluster` logs in like the others (raw requests over rustls).
    let out = server.admin_command(&["cluster", "brokers"]);
    assert!(out.contains(&server.tls), "{out}");
    let (ok, out) = fjord_at(
        &[
            "cluster",
            "brokers",
            "--security-protocol",
            "SASL_SSL",
            "--sasl-user",
            "admin",
            "--sasl-password",
            "admin-pw",
        ],
        &server.tls,
        &server.admin,
    );
    assert!(!ok && out.contains("--ssl-ca-location"), "{out}");
}

/// An OAuth issuer for the bearer test: a P-256 key and the JWKS naming it.
struct Issuer {
    key: jsonwebtoken::EncodingKey,
    jwks: Value,
}

impl Issuer {
    fn new() -> Issuer {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let pair = KeyPair::generate().unwrap();
        let raw = pair.public_key_raw();
        Issuer {
            key: jsonwebtoken::EncodingKey::from_ec_der(&pair.serialize_der()),
            jwks: serde_json::json!({"keys": [{
                "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": "k1",
                "x": URL_SAFE_NO_PAD.encode(&raw[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&raw[33..]),
            }]}),
        }
    }

    /// A token for `sub` that expires `lifetime` seconds from now (negative:
    /// expired that long ago).
    fn token(&self, sub: &str, lifetime: i64) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some("k1".to_owned());
        let claims = serde_json::json!({
            "sub": sub, "aud": "fjord", "iss": "https://idp.test", "exp": now + lifetime,
            "iat": now - 120,
        });
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }
}

#[test]
fn the_admin_api_takes_bearer_tokens_checked_as_oauthbearer_checks_them() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = Issuer::new();
    let jwks = dir.path().join("jwks.json");
    std::fs::write(&jwks, issuer.jwks.to_string()).unwrap();
    let server = start_with(
        dir.path(),
        &format!(
            "sasl.oauthbearer.jwks.endpoint.url: file://{}\n\
             sasl.oauthbearer.expected.audience: fjord\n\
             sasl.oauthbearer.expected.issuer: https://idp.test\n",
            jwks.display()
        ),
    );
    let agent = https(&server.ca);
    let bearer = |token: &str, method: &str, path: &str| {
        let auth = format!("Bearer {token}");
        answer(match method {
            "GET" => agent
                .get(server.url(path))
                .header("Authorization", &auth)
                .call(),
            _ => agent
                .post(server.url(path))
                .header("Authorization", &auth)
                .header("Content-Type", "application/json")
                .send(r#"{"name": "from-a-token"}"#),
        })
    };

    // The token's subject is the principal, and the ACLs apply to it:
    // carol (no bindings) may not create a topic, the admin (a super user)
    // may.
    let who = bearer(&issuer.token("carol", 300), "GET", "/api/v1/session");
    assert_eq!(who.status, 200, "{}", who.body);
    assert_eq!(who.body["principal"], "User:carol");
    let refused = bearer(&issuer.token("carol", 300), "POST", "/api/v1/topics");
    assert_eq!(refused.status, 403, "{}", refused.body);
    let created = bearer(&issuer.token("admin", 300), "POST", "/api/v1/topics");
    assert_eq!(created.status, 201, "{}", created.body);

    // An expired token, and one another key signed, are refused with why.
    let expired = bearer(&issuer.token("admin", -600), "GET", "/api/v1/topics");
    assert_eq!(expired.status, 401, "{}", expired.body);
    assert!(
        expired.body["error"]
            .as_str()
            .unwrap()
            .starts_with("bearer token refused"),
        "{}",
        expired.body
    );
    let forged = bearer(&Issuer::new().token("admin", 300), "GET", "/api/v1/topics");
    assert_eq!(forged.status, 401, "{}", forged.body);
    // The server serves on.
    assert_eq!(server.get(&agent, "/health/live", None).status, 200);
}

#[test]
fn bearer_tokens_are_refused_without_a_jwks() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let agent = https(&server.ca);
    let answer = answer(
        agent
            .get(server.url("/api/v1/topics"))
            .header(
                "Authorization",
                format!("Bearer {}", Issuer::new().token("admin", 300)),
            )
            .call(),
    );
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert!(
        answer.body["error"]
            .as_str()
            .unwrap()
            .contains("sasl.oauthbearer.jwks.endpoint.url"),
        "{}",
        answer.body
    );
}
