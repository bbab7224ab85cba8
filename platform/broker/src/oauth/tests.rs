//! Tokens signed here with keys made here (rcgen's P-256 keys), checked
//! against a JWKS file written here.

use super::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

struct Signer {
    kid: String,
    key: EncodingKey,
    jwk: serde_json::Value,
}

impl Signer {
    fn new(kid: &str) -> Signer {
        let pair = rcgen::KeyPair::generate().unwrap();
        let raw = pair.public_key_raw();
        assert_eq!(raw.len(), 65, "an uncompressed P-256 point");
        Signer {
            kid: kid.to_owned(),
            key: EncodingKey::from_ec_der(&pair.serialize_der()),
            jwk: json!({
                "kty": "EC", "crv": "P-256", "use": "sig", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(&raw[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&raw[33..]),
            }),
        }
    }

    fn sign(&self, claims: &serde_json::Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn write_jwks(path: &std::path::Path, signers: &[&Signer]) {
    let keys: Vec<_> = signers.iter().map(|s| s.jwk.clone()).collect();
    std::fs::write(path, json!({ "keys": keys }).to_string()).unwrap();
}

fn settings(path: &std::path::Path) -> OAuthSettings {
    OAuthSettings {
        jwks_url: format!("file://{}", path.display()),
        refresh: Duration::from_secs(3600),
        expected_audience: vec!["fjord".into()],
        expected_issuer: Some("https://idp.example/realms/kafka".into()),
        sub_claim: "sub".into(),
        scope_claim: "scope".into(),
        clock_skew_seconds: 30,
        jwks_truststore: None,
    }
}

fn claims() -> serde_json::Value {
    json!({
        "sub": "alice",
        "aud": ["account", "fjord"],
        "iss": "https://idp.example/realms/kafka",
        "exp": now() + 300,
        "iat": now(),
        "scope": "profile kafka",
    })
}

fn with(mut claims: serde_json::Value, key: &str, value: serde_json::Value) -> serde_json::Value {
    claims[key] = value;
    claims
}

fn without(mut claims: serde_json::Value, key: &str) -> serde_json::Value {
    claims.as_object_mut().unwrap().remove(key);
    claims
}

#[test]
fn a_good_token_names_its_subject() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    let signer = Signer::new("k1");
    write_jwks(&path, &[&signer]);
    let validator = TokenValidator::new(settings(&path)).unwrap();
    let exp = now() + 300;
    let token = validator
        .validate(&signer.sign(&with(claims(), "exp", json!(exp))))
        .unwrap();
    assert_eq!(token.principal, Principal::User("alice".into()));
    assert_eq!(token.expires_at, UNIX_EPOCH + Duration::from_secs(exp));
    assert_eq!(token.scopes, ["profile", "kafka"]);

    // Another claim names the principal when configured so.
    let mut other = settings(&path);
    other.sub_claim = "preferred_username".into();
    let validator = TokenValidator::new(other).unwrap();
    let token = with(claims(), "preferred_username", json!("bob"));
    assert_eq!(
        validator.validate(&signer.sign(&token)).unwrap().principal,
        Principal::User("bob".into())
    );
    assert_eq!(
        validator.validate(&signer.sign(&claims())),
        Err(OAuthError::MissingClaim("preferred_username".into()))
    );
}

#[test]
fn bad_tokens_are_refused_with_their_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    let signer = Signer::new("k1");
    write_jwks(&path, &[&signer]);
    let validator = TokenValidator::new(settings(&path)).unwrap();
    let check = |claims: serde_json::Value| validator.validate(&signer.sign(&claims));
    let t = now();
    assert_eq!(
        check(with(claims(), "exp", json!(t - 31))),
        Err(OAuthError::Expired)
    );
    // Within the clock skew.
    assert!(check(with(claims(), "exp", json!(t - 5))).is_ok());
    assert_eq!(
        check(without(claims(), "exp")),
        Err(OAuthError::MissingClaim("exp".into()))
    );
    assert_eq!(
        check(with(claims(), "nbf", json!(t + 120))),
        Err(OAuthError::NotYetValid)
    );
    assert!(check(with(claims(), "nbf", json!(t + 10))).is_ok());
    assert_eq!(
        check(with(claims(), "iat", json!(t + 120))),
        Err(OAuthError::IssuedInFuture)
    );
    assert_eq!(
        check(with(claims(), "aud", json!("someone-else"))),
        Err(OAuthError::Audience)
    );
    assert_eq!(
        check(without(claims(), "aud")),
        Err(OAuthError::MissingClaim("aud".into()))
    );
    assert_eq!(
        check(with(claims(), "iss", json!("https://evil.example"))),
        Err(OAuthError::Issuer)
    );
    assert_eq!(
        check(without(claims(), "iss")),
        Err(OAuthError::MissingClaim("iss".into()))
    );
    assert_eq!(
        check(with(claims(), "sub", json!(""))),
        Err(OAuthError::BadClaim("sub".into()))
    );
    assert_eq!(
        check(with(claims(), "sub", json!(7))),
        Err(OAuthError::BadClaim("sub".into()))
    );

    // Signed by another key under the same kid.
    let impostor = Signer::new("k1");
    assert_eq!(
        validator.validate(&impostor.sign(&claims())),
        Err(OAuthError::Signature)
    );
    // A tampered payload.
    let good = signer.sign(&claims());
    let mut parts: Vec<&str> = good.split('.').collect();
    let forged = URL_SAFE_NO_PAD.encode(with(claims(), "sub", json!("root")).to_string());
    parts[1] = &forged;
    assert_eq!(
        validator.validate(&parts.join(".")),
        Err(OAuthError::Signature)
    );
}

#[test]
fn only_asymmetric_signatures_by_jwks_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    let signer = Signer::new("k1");
    write_jwks(&path, &[&signer]);
    let validator = TokenValidator::new(settings(&path)).unwrap();
    // HMAC, keyed with the public key's text: the classic confusion.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("k1".into());
    let hmac = jsonwebtoken::encode(
        &header,
        &claims(),
        &EncodingKey::from_secret(signer.jwk.to_string().as_bytes()),
    )
    .unwrap();
    assert_eq!(
        validator.validate(&hmac),
        Err(OAuthError::Algorithm("HS256".into()))
    );
    // alg none: no signature at all.
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k1"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
    assert!(matches!(
        validator.validate(&format!("{none_header}.{payload}.")),
        Err(OAuthError::Malformed(_))
    ));
    // An RSA algorithm named for an EC key.
    let rs = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"k1"}"#);
    assert_eq!(
        validator.validate(&format!("{rs}.{payload}.AAAA")),
        Err(OAuthError::Algorithm("RS256".into()))
    );
    for junk in ["", "a.b", "not a token", "a.b.c"] {
        assert!(
            matches!(validator.validate(junk), Err(OAuthError::Malformed(_))),
            "{junk:?}"
        );
    }
    assert_eq!(
        validator.validate(&"a".repeat(MAX_TOKEN_BYTES + 1)),
        Err(OAuthError::TooLarge)
    );
}

#[test]
fn an_unknown_kid_refetches_the_jwks_once_per_interval() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    let (a, b, c) = (Signer::new("a"), Signer::new("b"), Signer::new("c"));
    write_jwks(&path, &[&a]);
    let validator = TokenValidator::new(settings(&path)).unwrap();
    // The issuer rotates in key b: the first token signed with it makes
    // the JWKS be fetched again.
    write_jwks(&path, &[&a, &b]);
    assert!(validator.validate(&b.sign(&claims())).is_ok());
    // Key c appears within the interval: not fetched again yet, so a
    // client inventing kids cannot make the broker fetch at its rate.
    write_jwks(&path, &[&a, &b, &c]);
    assert_eq!(
        validator.validate(&c.sign(&claims())),
        Err(OAuthError::UnknownKey("c".into()))
    );
    assert!(validator.validate(&a.sign(&claims())).is_ok());
}

#[test]
fn the_jwks_is_bounded_and_its_unusable_keys_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    let signer = Signer::new("k1");
    let keys = json!({ "keys": [
        signer.jwk,
        { "kty": "oct", "k": "c2VjcmV0", "kid": "hmac" },
        { "kty": "EC", "crv": "P-256", "use": "enc", "kid": "enc",
          "x": signer.jwk["x"], "y": signer.jwk["y"] },
        { "kty": "unknown", "kid": "odd" },
    ]});
    std::fs::write(&path, keys.to_string()).unwrap();
    let validator = TokenValidator::new(settings(&path)).unwrap();
    assert_eq!(validator.keys.read().len(), 1);
    assert!(validator.validate(&signer.sign(&claims())).is_ok());

    let many: Vec<_> = (0..=MAX_KEYS).map(|_| signer.jwk.clone()).collect();
    std::fs::write(&path, json!({ "keys": many }).to_string()).unwrap();
    assert!(TokenValidator::new(settings(&path)).is_err());
    std::fs::write(&path, " ".repeat(MAX_JWKS_BYTES as usize + 1)).unwrap();
    let Err(BrokerError::Config(why)) = TokenValidator::new(settings(&path)) else {
        panic!("an oversized JWKS loaded");
    };
    assert!(why.contains("over"), "{why}");
    let mut http = settings(&path);
    http.jwks_url = "http://idp.example/jwks".into();
    assert!(TokenValidator::new(http).is_err());
}

#[test]
fn client_first_messages() {
    let ok = b"n,,\x01auth=Bearer abc.def.ghi\x01\x01";
    assert_eq!(client_first(ok), Ok(("abc.def.ghi", "")));
    let with_ext = b"n,a=alice,\x01host=h\x01auth=bearer abc\x01traceId=1\x01\x01";
    assert_eq!(client_first(with_ext), Ok(("abc", "alice")));
    for bad in [
        &b""[..],
        b"n,,\x01auth=Bearer abc\x01",
        b"y,,\x01auth=Bearer abc\x01\x01",
        b"n,,\x01auth=Basic abc\x01\x01",
        b"n,,\x01auth=Bearer \x01\x01",
        b"n,,\x01host=x\x01\x01",
        b"n,,\x01auth=Bearer a\x01auth=Bearer b\x01\x01",
        b"n,x,\x01auth=Bearer abc\x01\x01",
        b"n,,\x01\xff\x01\x01",
    ] {
        assert!(client_first(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn kafka_listener_settings_are_accepted_as_written() {
    assert_eq!(
        check_listener_setting(
            "oauthbearer.sasl.server.callback.handler.class",
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler"
        ),
        Ok(true)
    );
    assert_eq!(
        check_listener_setting(
            "oauthbearer.sasl.jaas.config",
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ;"
        ),
        Ok(true)
    );
    assert!(
        check_listener_setting(
            "oauthbearer.sasl.server.callback.handler.class",
            "com.example.Mine"
        )
        .is_err()
    );
    assert_eq!(
        check_listener_setting("ssl.client.auth", "required"),
        Ok(false)
    );
}

/// The JWKS client's CAs come from Kafka's `ssl.truststore.location`
/// option of a listener's OAuthBearerLoginModule line.
#[test]
fn the_jwks_truststore_is_the_login_modules_option() {
    let line = |path: &str| {
        format!(
            "{LOGIN_MODULE} required ssl.truststore.location=\\\"{path}\\\" ssl.truststore.type=\\\"PEM\\\";"
        )
    };
    let config = |yaml: &str| -> BrokerConfig { crate::yaml::from_str(yaml).unwrap() };
    let one = config(&format!(
        "sasl.oauthbearer.jwks.endpoint.url: https://idp/certs\n\
         listener.name.sasl_ssl.oauthbearer.sasl.jaas.config: \"{}\"\n",
        line("/etc/idp-ca.pem")
    ));
    let settings = OAuthSettings::from_config(&one).unwrap().unwrap();
    assert_eq!(
        settings.jwks_truststore.as_deref(),
        Some(std::path::Path::new("/etc/idp-ca.pem"))
    );
    let two = config(&format!(
        "sasl.oauthbearer.jwks.endpoint.url: https://idp/certs\n\
         listener.name.a.oauthbearer.sasl.jaas.config: \"{}\"\n\
         listener.name.b.oauthbearer.sasl.jaas.config: \"{}\"\n",
        line("/etc/one.pem"),
        line("/etc/two.pem")
    ));
    assert!(OAuthSettings::from_config(&two).is_err());
    let jks = config(&format!(
        "sasl.oauthbearer.jwks.endpoint.url: https://idp/certs\n\
         listener.name.a.oauthbearer.sasl.jaas.config: \"{LOGIN_MODULE} required ssl.truststore.type=\\\"JKS\\\";\"\n"
    ));
    assert!(OAuthSettings::from_config(&jks).is_err());
    let none = config(&format!(
        "sasl.oauthbearer.jwks.endpoint.url: https://idp/certs\n\
         listener.name.a.oauthbearer.sasl.jaas.config: \"{LOGIN_MODULE} required ;\"\n"
    ));
    assert_eq!(
        OAuthSettings::from_config(&none)
            .unwrap()
            .unwrap()
            .jwks_truststore,
        None
    );
}
