//! Kafka's listener model, read from the broker's config: which sockets the
//! broker binds (`listeners`), what it tells clients about each
//! (`advertised.listeners`), which security protocol each speaks
//! (`listener.security.protocol.map`), which one the platform's own
//! connections use (`inter.broker.listener.name`), and which one carries
//! the controller quorum's links (`controller.listener.names`).
//!
//! It is for parsing and checking those settings into [`ListenerSpec`]s,
//! with errors naming the key at fault. It is not for binding (that is
//! `server`), TLS (that is `tls`) or what a connection may do before it
//! authenticates (that is `connection`).

use std::collections::BTreeMap;

use crate::config::BrokerConfig;
use crate::error::BrokerError;

/// Kafka's security protocols: what a listener's connections speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SecurityProtocol {
    /// Plain TCP; SASL optional.
    Plaintext,
    /// TLS; SASL optional, a client certificate names the principal.
    Ssl,
    /// Plain TCP; a connection must authenticate with SASL first.
    SaslPlaintext,
    /// TLS; a connection must authenticate with SASL first.
    SaslSsl,
}

impl SecurityProtocol {
    /// Kafka's name of the protocol, case-insensitive.
    pub(crate) fn parse(name: &str) -> Option<SecurityProtocol> {
        Some(match name.to_ascii_uppercase().as_str() {
            "PLAINTEXT" => SecurityProtocol::Plaintext,
            "SSL" => SecurityProtocol::Ssl,
            "SASL_PLAINTEXT" => SecurityProtocol::SaslPlaintext,
            "SASL_SSL" => SecurityProtocol::SaslSsl,
            _ => return None,
        })
    }

    /// Kafka's name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Whether connections are wrapped in TLS.
    pub(crate) fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether a connection must authenticate with SASL before anything
    /// but ApiVersions and the SASL requests.
    pub(crate) fn requires_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// One listener, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListenerSpec {
    /// Its name, upper-case (`PLAINTEXT`, `SSL`, `INTERNAL`, …).
    pub name: String,
    pub protocol: SecurityProtocol,
    /// `host:port` to bind; an empty host binds every interface.
    pub bind: String,
    /// The host clients are told; `None`: the bound one.
    pub advertised_host: Option<String>,
    /// The port clients are told; `None`: the bound one.
    pub advertised_port: Option<u16>,
}

/// A listener once bound: what a connection's session knows of the
/// listener it came in on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BoundListener {
    pub name: String,
    pub protocol: SecurityProtocol,
    /// What Metadata, DescribeCluster and FindCoordinator tell a client of
    /// this listener about this broker (Kafka answers each client with the
    /// endpoints of the listener it used).
    pub advertised_host: String,
    pub advertised_port: i32,
}

#[cfg(test)]
impl BoundListener {
    /// A PLAINTEXT listener advertising `127.0.0.1:9`, for handler tests.
    pub(crate) fn plaintext_for_tests() -> BoundListener {
        BoundListener {
            name: "PLAINTEXT".into(),
            protocol: SecurityProtocol::Plaintext,
            advertised_host: "127.0.0.1".into(),
            advertised_port: 9,
        }
    }
}

/// Every listener of a broker, and which one is the inter-broker one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listeners {
    /// The Kafka listeners (the controller's is not one of them).
    pub specs: Vec<ListenerSpec>,
    /// Index in `specs` of `inter.broker.listener.name`'s listener.
    pub inter_broker: usize,
    /// The controller quorum's listener (`controller.listener.names`), if
    /// named; its `bind` is empty when it is not in `listeners`.
    pub controller: Option<ListenerSpec>,
}

impl Listeners {
    /// The listeners `config` describes: `listeners` when set, else one
    /// PLAINTEXT listener on `listener` (with `advertised.host` and
    /// `advertised.port`), as before listeners existed.
    pub(crate) fn from_config(config: &BrokerConfig) -> Result<Listeners, BrokerError> {
        let map = protocol_map(config.listener_security_protocol_map.as_deref())?;
        let mut controller = controller_spec(config, &map)?;
        let Some(entries) = &config.listeners else {
            if config.advertised_listeners.is_some() {
                return Err(bad(
                    "advertised.listeners",
                    "is set without listeners; set listeners too",
                ));
            }
            let spec = ListenerSpec {
                name: "PLAINTEXT".to_owned(),
                protocol: SecurityProtocol::Plaintext,
                bind: config.listener.clone(),
                advertised_host: config.advertised_host.clone(),
                advertised_port: config.advertised_port,
            };
            let inter_broker = match &config.inter_broker_listener_name {
                Some(name) if !name.eq_ignore_ascii_case("PLAINTEXT") => {
                    return Err(bad(
                        "inter.broker.listener.name",
                        &format!("{name} is not a listener; the only one is PLAINTEXT"),
                    ));
                }
                _ => 0,
            };
            return Ok(Listeners {
                specs: vec![spec],
                inter_broker,
                controller,
            });
        };
        if entries.is_empty() {
            return Err(bad("listeners", "is empty"));
        }
        let mut specs: Vec<ListenerSpec> = Vec::new();
        for entry in entries {
            let (name, host, port) = endpoint("listeners", entry)?;
            let Some(&protocol) = map.get(&name) else {
                return Err(bad(
                    "listeners",
                    &format!(
                        "{entry}: {name} is not in listener.security.protocol.map (nor a security protocol)"
                    ),
                ));
            };
            if specs.iter().any(|s| s.name == name) {
                return Err(bad("listeners", &format!("{name} is listed twice")));
            }
            if let Some(controller) = controller.as_mut().filter(|c| c.name == name) {
                // The controller binds it, not the Kafka server.
                controller.bind = join(&host, port);
                continue;
            }
            specs.push(ListenerSpec {
                name,
                protocol,
                bind: join(&host, port),
                advertised_host: None,
                advertised_port: None,
            });
        }
        if specs.is_empty() {
            return Err(bad(
                "listeners",
                "names no Kafka listener besides the controller's",
            ));
        }
        for entry in config.advertised_listeners.iter().flatten() {
            let (name, host, port) = endpoint("advertised.listeners", entry)?;
            let Some(spec) = specs.iter_mut().find(|s| s.name == name) else {
                return Err(bad(
                    "advertised.listeners",
                    &format!("{entry}: {name} is not one of listeners"),
                ));
            };
            if spec.advertised_host.is_some() {
                return Err(bad(
                    "advertised.listeners",
                    &format!("{name} is listed twice"),
                ));
            }
            if host.is_empty() {
                return Err(bad(
                    "advertised.listeners",
                    &format!("{entry}: a host to advertise is needed"),
                ));
            }
            spec.advertised_host = Some(host);
            spec.advertised_port = (port != 0).then_some(port);
        }
        let inter_broker = match &config.inter_broker_listener_name {
            None => 0,
            Some(name) => {
                let upper = name.to_ascii_uppercase();
                specs.iter().position(|s| s.name == upper).ok_or_else(|| {
                    bad(
                        "inter.broker.listener.name",
                        &format!("{name} is not one of listeners"),
                    )
                })?
            }
        };
        Ok(Listeners {
            specs,
            inter_broker,
            controller,
        })
    }
}

/// The listener `controller.listener.names` names first, with its protocol
/// from the map (with SASL, the login is `tls::controller`'s to read).
fn controller_spec(
    config: &BrokerConfig,
    map: &BTreeMap<String, SecurityProtocol>,
) -> Result<Option<ListenerSpec>, BrokerError> {
    let key = "controller.listener.names";
    let Some(first) = config.controller_listener_names.iter().flatten().next() else {
        return Ok(None);
    };
    let name = listener_name(key, first.trim())?;
    let Some(&protocol) = map.get(&name) else {
        return Err(bad(
            key,
            &format!("{name} is not in listener.security.protocol.map (nor a security protocol)"),
        ));
    };
    if config
        .inter_broker_listener_name
        .as_deref()
        .is_some_and(|inter| inter.eq_ignore_ascii_case(&name))
    {
        return Err(bad(
            "inter.broker.listener.name",
            &format!("{name} is the controller's listener (controller.listener.names)"),
        ));
    }
    Ok(Some(ListenerSpec {
        name,
        protocol,
        bind: String::new(),
        advertised_host: None,
        advertised_port: None,
    }))
}

/// `listener.security.protocol.map`: `NAME:PROTOCOL` pairs over Kafka's
/// identity map (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL name themselves).
fn protocol_map(
    entries: Option<&[String]>,
) -> Result<BTreeMap<String, SecurityProtocol>, BrokerError> {
    let key = "listener.security.protocol.map";
    let mut map: BTreeMap<String, SecurityProtocol> = [
        SecurityProtocol::Plaintext,
        SecurityProtocol::Ssl,
        SecurityProtocol::SaslPlaintext,
        SecurityProtocol::SaslSsl,
    ]
    .into_iter()
    .map(|p| (p.name().to_owned(), p))
    .collect();
    let Some(entries) = entries else {
        return Ok(map);
    };
    // Set explicitly, the map replaces Kafka's default, as in Kafka.
    map.clear();
    for entry in entries {
        let Some((name, protocol)) = entry.split_once(':') else {
            return Err(bad(key, &format!("{entry}: expected NAME:PROTOCOL")));
        };
        let name = listener_name(key, name.trim())?;
        let Some(protocol) = SecurityProtocol::parse(protocol.trim()) else {
            return Err(bad(
                key,
                &format!(
                    "{entry}: {protocol} is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
                    protocol = protocol.trim()
                ),
            ));
        };
        if map.insert(name.clone(), protocol).is_some() {
            return Err(bad(key, &format!("{name} is listed twice")));
        }
    }
    Ok(map)
}

/// A listener name: letters, digits and `_`, upper-cased.
fn listener_name(key: &str, name: &str) -> Result<String, BrokerError> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(bad(
            key,
            &format!("{name:?} is not a listener name (letters, digits, _ and -)"),
        ));
    }
    Ok(name.to_ascii_uppercase())
}

/// `NAME://host:port` (`host` may be empty, or `[v6]`).
fn endpoint(key: &str, entry: &str) -> Result<(String, String, u16), BrokerError> {
    let Some((name, address)) = entry.split_once("://") else {
        return Err(bad(
            key,
            &format!("{entry}: expected NAME://host:port, e.g. PLAINTEXT://127.0.0.1:9092"),
        ));
    };
    let name = listener_name(key, name)?;
    let Some((host, port)) = address.rsplit_once(':') else {
        return Err(bad(key, &format!("{entry}: no port")));
    };
    let Ok(port) = port.parse::<u16>() else {
        return Err(bad(key, &format!("{entry}: {port:?} is not a port")));
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.contains(['/', ' ', ',']) {
        return Err(bad(key, &format!("{entry}: {host:?} is not a host")));
    }
    Ok((name, host.to_owned(), port))
}

/// `host:port` for binding: an empty host is every interface, an IPv6
/// address gets its brackets back.
fn join(host: &str, port: u16) -> String {
    match host {
        "" => format!("0.0.0.0:{port}"),
        h if h.contains(':') => format!("[{h}]:{port}"),
        h => format!("{h}:{port}"),
    }
}

fn bad(key: &str, why: &str) -> BrokerError {
    BrokerError::Config(format!("{key}: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listeners(yaml: &str) -> Result<Listeners, String> {
        let config: BrokerConfig = crate::yaml::from_str(yaml).map_err(|e| e.to_string())?;
        Listeners::from_config(&config).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_one_plaintext_listener_as_before() {
        let l = listeners("log.dir: x\n").unwrap();
        assert_eq!(l.specs.len(), 1);
        assert_eq!(l.specs[0].name, "PLAINTEXT");
        assert_eq!(l.specs[0].bind, "127.0.0.1:9092");
        assert_eq!(l.specs[0].protocol, SecurityProtocol::Plaintext);
        let l =
            listeners("listener: 0.0.0.0:9000\nadvertised.host: a.example\nadvertised.port: 1\n")
                .unwrap();
        assert_eq!(l.specs[0].bind, "0.0.0.0:9000");
        assert_eq!(l.specs[0].advertised_host.as_deref(), Some("a.example"));
        assert_eq!(l.specs[0].advertised_port, Some(1));
    }

    #[test]
    fn kafka_listeners_parse() {
        let l = listeners(
            "listeners: PLAINTEXT://127.0.0.1:9092,SASL_SSL://:9093, client://[::1]:9094\n\
             advertised.listeners: [\"SASL_SSL://broker-1.example:19093\"]\n\
             listener.security.protocol.map: PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,CLIENT:SSL\n\
             inter.broker.listener.name: plaintext\n",
        )
        .unwrap();
        let names: Vec<_> = l
            .specs
            .iter()
            .map(|s| (s.name.as_str(), s.protocol))
            .collect();
        assert_eq!(
            names,
            [
                ("PLAINTEXT", SecurityProtocol::Plaintext),
                ("SASL_SSL", SecurityProtocol::SaslSsl),
                ("CLIENT", SecurityProtocol::Ssl)
            ]
        );
        assert_eq!(l.specs[1].bind, "0.0.0.0:9093");
        assert_eq!(l.specs[2].bind, "[::1]:9094");
        assert_eq!(
            l.specs[1].advertised_host.as_deref(),
            Some("broker-1.example")
        );
        assert_eq!(l.specs[1].advertised_port, Some(19093));
        assert_eq!(l.specs[0].advertised_host, None);
        assert_eq!(l.inter_broker, 0);
    }

    #[test]
    fn the_controller_listener_is_not_a_kafka_listener() {
        let l = listeners(
            "listeners: SASL_SSL://:9093,INTERNAL://127.0.0.1:9094,CONTROLLER://127.0.0.1:9095\n\
             listener.security.protocol.map: SASL_SSL:SASL_SSL,INTERNAL:SSL,CONTROLLER:SSL\n\
             inter.broker.listener.name: INTERNAL\n\
             controller.listener.names: CONTROLLER\n",
        )
        .unwrap();
        let names: Vec<_> = l.specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["SASL_SSL", "INTERNAL"]);
        assert_eq!(l.inter_broker, 1);
        let controller = l.controller.unwrap();
        assert_eq!(
            (controller.name.as_str(), controller.protocol),
            ("CONTROLLER", SecurityProtocol::Ssl)
        );
        assert_eq!(controller.bind, "127.0.0.1:9095");
        // Not in listeners: the address comes from controller.listener.
        let l = listeners("controller.listener.names: SSL\n").unwrap();
        assert_eq!(l.controller.unwrap().bind, "");
        // SASL too: the quorum's links then log in (see `tls::controller`).
        let l = listeners("controller.listener.names: SASL_SSL\n").unwrap();
        assert_eq!(l.controller.unwrap().protocol, SecurityProtocol::SaslSsl);
    }

    #[test]
    fn bad_values_name_their_key() {
        for (yaml, key) in [
            (
                "listeners: 127.0.0.1:9092\n",
                "listeners: 127.0.0.1:9092: expected NAME://",
            ),
            (
                "listeners: PLAINTEXT://h:x\n",
                "listeners: PLAINTEXT://h:x: \"x\" is not a port",
            ),
            (
                "listeners: FOO://h:1\n",
                "listeners: FOO://h:1: FOO is not in listener.security.protocol.map",
            ),
            (
                "listeners: SSL://h:1,SSL://h:2\n",
                "listeners: SSL is listed twice",
            ),
            (
                "listeners: SSL://h:1\nlistener.security.protocol.map: SSL:TLS\n",
                "listener.security.protocol.map: SSL:TLS: TLS is not PLAINTEXT",
            ),
            (
                "listeners: SSL://h:1\nadvertised.listeners: PLAINTEXT://h:1\n",
                "advertised.listeners: PLAINTEXT://h:1: PLAINTEXT is not one of listeners",
            ),
            (
                "listeners: SSL://h:1\ninter.broker.listener.name: INTERNAL\n",
                "inter.broker.listener.name: INTERNAL is not one of listeners",
            ),
            (
                "advertised.listeners: SSL://h:1\n",
                "advertised.listeners: is set without listeners",
            ),
            (
                "controller.listener.names: QUORUM\n",
                "controller.listener.names: QUORUM is not in listener.security.protocol.map",
            ),
            (
                "listeners: SSL://h:1\ncontroller.listener.names: SSL\n",
                "listeners: names no Kafka listener besides the controller's",
            ),
            (
                "listeners: SSL://h:1,PLAINTEXT://h:2\ncontroller.listener.names: SSL\ninter.broker.listener.name: SSL\n",
                "inter.broker.listener.name: SSL is the controller's listener",
            ),
        ] {
            let error = listeners(yaml).unwrap_err();
            assert!(error.contains(key), "{yaml}: {error}");
        }
    }
}
