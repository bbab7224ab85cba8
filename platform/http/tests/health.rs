//! `/health/ready` against a real broker: ready, and degraded (503, with
//! the free and reserved bytes) while the data directory's free space is
//! below `log.dir.reserve.bytes` — set here above the disk's real free
//! space, since mounting a small file system needs root.
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

async fn start(reserve: u64, dir: &std::path::Path) -> (Broker, AdminServer) {
    let config = BrokerConfig {
        log_dir_reserve_bytes: reserve,
        ..BrokerConfig::ephemeral(dir)
    };
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
    let state = AdminState::new(broker.local(), host).with_authentication(false);
    let admin = AdminServer::start("127.0.0.1:0", state).await.unwrap();
    admin.set_ready(true);
    (broker, admin)
}

fn ready(admin: &AdminServer) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into();
    let mut response = agent
        .get(format!("http://{}/health/ready", admin.local_addr()))
        .call()
        .unwrap();
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    (status, serde_json::from_str(&text).unwrap())
}

#[test]
fn ready_is_degraded_below_the_disk_reserve() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (roomy_dir, full_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let free = fjord_broker::free_bytes(full_dir.path()).unwrap();
    let reserve = free.saturating_mul(2).max(1 << 40);
    let (_roomy, roomy_admin) = runtime.block_on(start(1, roomy_dir.path()));
    let (_full, full_admin) = runtime.block_on(start(reserve, full_dir.path()));

    let (status, body) = ready(&roomy_admin);
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")));

    let (status, body) = ready(&full_admin);
    assert_eq!(
        (status, body["status"].as_str()),
        (503, Some("degraded")),
        "{body}"
    );
    assert_eq!(body["reserve_bytes"].as_u64(), Some(reserve));
    let reported = body["free_bytes"].as_u64().unwrap();
    assert!(reported > 0 && reported < reserve, "{body}");
}
