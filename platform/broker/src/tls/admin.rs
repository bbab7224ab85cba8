//! TLS for the admin HTTP listener (served by `fjord-http`), on the same
//! terms as a Kafka listener: the `admin.ssl.*` settings read into the
//! same [`TlsSettings`], loaded and reloaded by the same [`ServerTls`].
//! Only the reading of the settings is here.

use std::path::PathBuf;
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
        keystore: PathBuf::from(keystore),
        truststore,
        client_auth,
        rules,
    };
    ServerTls::load("admin", settings).map(|tls| Some(Arc::new(tls)))
}
