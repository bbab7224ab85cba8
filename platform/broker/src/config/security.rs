//! The SASL mechanisms, admin authentication and authorizer a
//! [`BrokerConfig`] asks for. Not for the listeners' TLS (see `tls`).

use super::BrokerConfig;
use crate::error::BrokerError;

impl BrokerConfig {
    /// `sasl.enabled.mechanisms`, checked; the default list gains
    /// OAUTHBEARER when a JWKS is configured, and OAUTHBEARER needs one.
    pub(crate) fn sasl_mechanisms(&self) -> Result<Vec<crate::sasl::Mechanism>, BrokerError> {
        use crate::sasl::Mechanism;
        let mut mechanisms = self
            .sasl_enabled_mechanisms
            .iter()
            .map(|name| {
                Mechanism::from_name(name).ok_or_else(|| {
                    BrokerError::Config(format!(
                        "sasl.enabled.mechanisms: unknown mechanism {name:?} \
                         (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER)"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let jwks = self.sasl_oauthbearer_jwks_endpoint_url.is_some();
        if mechanisms.contains(&Mechanism::OAuthBearer) && !jwks {
            return Err(BrokerError::Config(
                "sasl.enabled.mechanisms: OAUTHBEARER needs sasl.oauthbearer.jwks.endpoint.url"
                    .to_string(),
            ));
        }
        if jwks && mechanisms == Mechanism::DEFAULT {
            mechanisms.push(Mechanism::OAuthBearer);
        }
        Ok(mechanisms)
    }

    /// Whether the admin API requires credentials: `admin.api.require.auth`,
    /// by default on once an authorizer or an admin user is configured.
    pub fn admin_requires_auth(&self) -> bool {
        self.admin_api_require_auth.unwrap_or(
            self.sasl_admin_user.is_some()
                || self
                    .authorizer_class_name
                    .as_deref()
                    .is_some_and(|n| !n.trim().is_empty()),
        )
    }

    /// `super.users` with the admin user (`User:` entries).
    pub(crate) fn all_super_users(&self) -> Vec<String> {
        let mut users = self.super_users.clone();
        if let Some(admin) = &self.sasl_admin_user {
            users.push(format!("User:{admin}"));
        }
        users
    }

    /// The authorizer `authorizer.class.name` asks for (`None`: no
    /// authorization), with `super.users` and
    /// `allow.everyone.if.no.acl.found`.
    pub(crate) fn authorizer(&self) -> Result<Option<crate::authorizer::Authorizer>, BrokerError> {
        let name = self.authorizer_class_name.as_deref().map(str::trim);
        match name {
            None | Some("") => Ok(None),
            Some(name)
                if crate::authorizer::AUTHORIZER_NAMES
                    .iter()
                    .any(|known| known.eq_ignore_ascii_case(name)) =>
            {
                Ok(Some(crate::authorizer::Authorizer::new(
                    &self.all_super_users().join(";"),
                    self.allow_everyone_if_no_acl_found,
                )))
            }
            Some(other) => Err(BrokerError::Config(format!(
                "authorizer.class.name {other:?} is not one of {}",
                crate::authorizer::AUTHORIZER_NAMES.join(", ")
            ))),
        }
    }
}
