//! TLS for the admin HTTP listener (served by `fjord-http`), on the same
//! terms as a Kafka listener: the `admin.ssl.*` settings read into the
//! same [`TlsSettings`], loaded and reloaded by the same [`ServerTls`].
//! Only the reading of the settings is here.

use std::sync::Arc;

use super::principal::MappingRules;
use super::{ClientAuth, ServerTls, TlsSettings};
use crate::config::BrokerConfig;
use crate::error::BrokerError;

/// The admin listener's TLS, loaded (`None`: no
/// `admin.ssl.keystore.location`, plain HTTP). The caller starts its
/// reload task with [`ServerTls::watch`] every `ssl.reload.interval.ms`.
pub fn admin_tls(config: &BrokerConfig) -> Result<Option<Arc<ServerTls>>, BrokerError> {
    let bad = |key: &str, why: &str| BrokerError::Config(format!("{key}: {why}"));
    let truststore = config
        .admin_ssl_truststore_location
        .clone()
        .filter(|p| !p.as_os_str().is_empty());
    let Some(keystore) = config
        .admin_ssl_keystore_location
        .clone()
        .filter(|p| !p.as_os_str().is_empty())
    else {
        if truststore.is_some() || config.admin_ssl_client_auth.is_some() {
            return Err(bad(
                "admin.ssl.keystore.location",
                "needed for TLS on the admin listener (admin.ssl.truststore.location or \
                 admin.ssl.client.auth is set)",
            ));
        }
        return Ok(None);
    };
    let client_auth = match config
        .admin_ssl_client_auth
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("none") => ClientAuth::None,
        Some("requested") => ClientAuth::Requested,
        Some("required") => ClientAuth::Required,
        Some(other) => {
            return Err(bad(
                "admin.ssl.client.auth",
                &format!("{other:?} is not required, requested or none"),
            ));
        }
    };
    if client_auth != ClientAuth::None && truststore.is_none() {
        return Err(bad(
            "admin.ssl.client.auth",
            "client certificates are checked against admin.ssl.truststore.location, which is \
             not set",
        ));
    }
    let rules = match &config.ssl_principal_mapping_rules {
        Some(text) => {
            MappingRules::parse(text).map_err(|why| bad("ssl.principal.mapping.rules", &why))?
        }
        None => MappingRules::default(),
    };
    let settings = TlsSettings {
        keystore,
        truststore,
        client_auth,
        rules,
    };
    ServerTls::load("admin", settings).map(|tls| Some(Arc::new(tls)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(yaml: &str) -> Result<Option<Arc<ServerTls>>, String> {
        let config: BrokerConfig = crate::yaml::from_str(yaml).map_err(|e| e.to_string())?;
        admin_tls(&config).map_err(|e| e.to_string())
    }

    #[test]
    fn admin_tls_settings_are_checked() {
        assert!(read("{}").unwrap().is_none());
        for (yaml, says) in [
            (
                "admin.ssl.truststore.location: /ca.pem\n",
                "admin.ssl.keystore.location: needed",
            ),
            (
                "admin.ssl.keystore.location: /k.pem\nadmin.ssl.client.auth: maybe\n",
                "admin.ssl.client.auth: \"maybe\" is not required, requested or none",
            ),
            (
                "admin.ssl.keystore.location: /k.pem\nadmin.ssl.client.auth: required\n",
                "not set",
            ),
            (
                "admin.ssl.keystore.location: /nonexistent/k.pem\n",
                "listener admin: TLS: /nonexistent/k.pem",
            ),
        ] {
            let error = read(yaml).err().unwrap_or_default();
            assert!(error.contains(says), "{yaml}: {error}");
        }
    }

    #[test]
    fn a_keystore_loads() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let keystore = dir.path().join("admin.pem");
        std::fs::write(&keystore, format!("{}{}", cert.pem(), key.serialize_pem())).unwrap();
        let yaml = format!("admin.ssl.keystore.location: {}\n", keystore.display());
        assert!(read(&yaml).unwrap().is_some());
    }

    #[test]
    fn authentication_is_on_once_the_broker_is_secured() {
        let config = |yaml: &str| -> BrokerConfig { crate::yaml::from_str(yaml).unwrap() };
        assert!(!config("{}").admin_requires_auth());
        assert!(config("authorizer.class.name: acl\n").admin_requires_auth());
        assert!(config("sasl.admin.user: a\nsasl.admin.password: p\n").admin_requires_auth());
        assert!(
            !config("authorizer.class.name: acl\nadmin.api.require.auth: false\n")
                .admin_requires_auth()
        );
        assert!(config("admin.api.require.auth: true\n").admin_requires_auth());
    }
}
