//! Every route of the admin API against its authorization rule, with a
//! real broker (authorizer on, no ACLs) and a real HTTP client: an
//! unprivileged principal is refused each route that needs a right (403,
//! naming the operation and the resource), a super user is refused none,
//! and a route added to the router without a rule fails this test (it is
//! found in `src/api/mod.rs`, probed with every method, and must be in the
//! table `src/api/authorize.rs` serves from).
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

use std::sync::Arc;
use std::time::Duration;

use fjord_broker::{Broker, BrokerConfig};
use fjord_http::{AdminServer, AdminState};
use fjord_plugin_host::{HostConfig, PluginHost};
use serde_json::Value;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

/// The paths `src/api/mod.rs` routes: the first string of each `.route(`.
fn routed_paths() -> Vec<String> {
    let source = include_str!("../src/api/mod.rs");
    source
        .split(".route(")
        .skip(1)
        .filter_map(|call| {
            let start = call.find('"')? + 1;
            let end = start + call[start..].find('"')?;
            Some(call[start..end].to_owned())
        })
        .collect()
}

/// The table `src/api/authorize.rs` holds, as (method, path, rule).
fn rules() -> Vec<(String, String, String)> {
    fjord_http::route_rules()
        .map(|(m, p, r)| (m.to_owned(), p.to_owned(), r))
        .collect()
}

async fn start(super_anonymous: bool) -> (Broker, AdminServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = BrokerConfig::ephemeral(dir.path());
    config.authorizer_class_name = Some("acl".to_owned());
    if super_anonymous {
        config.super_users = vec!["User:ANONYMOUS".to_owned()];
    }
    let broker = Broker::start(config).await.unwrap();
    let host = Arc::new(
        PluginHost::new(
            HostConfig {
                cache_dir: Some(dir.path().join("plugin-cache")),
                ..HostConfig::default()
            },
            fjord_builtins::all(),
        )
        .unwrap(),
    );
    // Authentication off: every request is User:ANONYMOUS, and the ACLs
    // alone decide.
    let state = AdminState::new(broker.local(), host).with_authentication(false);
    let admin = AdminServer::start("127.0.0.1:0", state).await.unwrap();
    admin.set_ready(true);
    (broker, admin, dir)
}

fn call(base: &str, method: &str, path: &str) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let url = format!("{base}{path}");
    let request = ureq::http::Request::builder()
        .method(method)
        .uri(&url)
        .header("Content-Type", "application/json")
        .body("{}".to_owned())
        .unwrap();
    let mut response = agent.run(request).unwrap();
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn concrete(path: &str) -> String {
    path.replace("{topic}", "orders")
        .replace("{group}", "billing")
        .replace("{name}", "etl")
}

#[test]
fn every_route_has_a_rule_and_the_rules_hold() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (_broker, admin, _dir) = runtime.block_on(start(false));
    let (_broker2, admin2, _dir2) = runtime.block_on(start(true));
    let base = format!("http://{}", admin.local_addr());
    let super_base = format!("http://{}", admin2.local_addr());
    let rules = rules();
    let paths = routed_paths();
    assert!(paths.len() >= 20, "routes found: {paths:?}");
    assert!(rules.len() >= paths.len(), "rules found: {rules:?}");

    // Every method a routed path answers (not 405) has a rule.
    for path in &paths {
        for method in METHODS {
            let (status, body) = call(&base, method, &concrete(path));
            let ruled = rules.iter().any(|(m, p, _)| m == method && p == path);
            if status == 405 {
                assert!(!ruled, "{method} {path} has a rule but no route");
                continue;
            }
            assert!(
                ruled,
                "{method} {path} is routed ({status} {body}) but has no rule in \
                 src/api/authorize.rs"
            );
        }
    }

    for (method, path, rule) in &rules {
        assert!(paths.contains(path), "rule for {method} {path}: no route");
        let url = concrete(path);
        let (status, body) = call(&base, method, &url);
        let needs_right = ["CLUSTER ", "TOPIC ", "GROUP "]
            .iter()
            .any(|r| rule.starts_with(r));
        if needs_right {
            assert_eq!(status, 403, "{method} {path} ({rule}): {body}");
            let message = body["error"].as_str().unwrap();
            assert!(
                message.starts_with("User:ANONYMOUS may not "),
                "{method} {path}: {message}"
            );
            let resource = if rule.starts_with("CLUSTER") {
                "the cluster"
            } else if rule.starts_with("TOPIC") {
                "topic \"orders\""
            } else {
                "group \"billing\""
            };
            assert!(message.contains(resource), "{method} {path}: {message}");
            assert!(
                body["kafka_error"]
                    .as_str()
                    .unwrap()
                    .ends_with("_AUTHORIZATION_FAILED"),
                "{body}"
            );
        } else {
            assert_ne!(status, 401, "{method} {path} ({rule}): {body}");
        }
        // A super user is refused nothing.
        let (status, body) = call(&super_base, method, &url);
        assert!(
            status != 403 && status != 401,
            "{method} {path} as a super user: {status} {body}"
        );
    }

    // Lists are filtered, creations checked, in the handlers.
    let (status, body) = call(&base, "POST", "/api/v1/topics");
    assert_eq!(status, 400, "{body}");
    let created = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
        .post(format!("{base}/api/v1/topics"))
        .header("Content-Type", "application/json")
        .send(r#"{"name": "orders"}"#)
        .unwrap();
    assert_eq!(created.status().as_u16(), 403);
    let created = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent()
        .post(format!("{super_base}/api/v1/topics"))
        .header("Content-Type", "application/json")
        .send(r#"{"name": "orders"}"#)
        .unwrap();
    assert_eq!(created.status().as_u16(), 201);
    let (status, listed) = call(&super_base, "GET", "/api/v1/topics");
    assert_eq!(status, 200);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "orders")
    );
    let (status, listed) = call(&base, "GET", "/api/v1/topics");
    assert_eq!(status, 200);
    assert_eq!(listed, serde_json::json!([]), "nothing is describable");
    runtime.block_on(async {
        admin.shutdown().await;
        admin2.shutdown().await;
    });
}
