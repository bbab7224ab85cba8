//! Tests of the cluster harness itself (`common::cluster`, `common::proxy`)
//! against what the cluster already does: the controller quorum elects an
//! active controller, registers every broker, and fences a broker whose
//! heartbeats stop. Each fault the harness injects — a cut link, a paused
//! process — must show up there; if one does not, the harness is broken
//! (or the quorum is), and the failover tests built on it would prove
//! nothing.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::kafka::{PartitionInfo, consume_all, create_topic, log_bytes, produce_to};
use common::proxy::FaultProxy;

#[test]
fn three_nodes_elect_a_controller_and_register_three_brokers() {
    let started = Instant::now();
    let cluster = Cluster::start(3);
    let leader = cluster.wait_for_brokers(&[1, 2, 3]);
    assert!((1..=3).contains(&leader));
    // Every node was given its own voter list: peers behind proxies.
    let view = cluster.quorum(1).expect("node 1 answers");
    let voters = view["voters"].as_array().expect("voters");
    assert_eq!(voters.len(), 3, "{view}");
    let own = voters.iter().find(|v| v["id"] == 1).expect("itself");
    assert_eq!(
        own["address"].as_str(),
        cluster.node(1).controller.map(|a| a.to_string()).as_deref(),
        "its own entry is its real controller address: {view}"
    );
    eprintln!("3 nodes up in {:?}", started.elapsed());
}

#[test]
fn cutting_the_active_controller_moves_the_quorum_and_fences_its_broker() {
    let mut cluster = Cluster::start(3);
    let first = cluster.wait_for_brokers(&[1, 2, 3]);

    let cut_at = Instant::now();
    cluster.cut(first);
    let others: Vec<u64> = cluster.ids().into_iter().filter(|&i| i != first).collect();
    // The two reachable nodes elect one of themselves; the cut node's
    // broker misses its heartbeats and is fenced. (The cut node itself is
    // not asked: it may still believe it leads.)
    let second = cluster.wait_for("a new controller that fences the cut node", |c| {
        let leader = c.active_controller()?;
        (leader != first
            && c.registered_unfenced_brokers() == others
            && c.fenced_brokers() == [first])
        .then_some(leader)
    });
    assert_ne!(second, first);
    eprintln!(
        "cut node {first}: node {second} leads and fenced it in {:?}",
        cut_at.elapsed()
    );

    let healed_at = Instant::now();
    cluster.heal(first);
    cluster.wait_for_brokers(&[1, 2, 3]);
    eprintln!("healed node {first}: unfenced in {:?}", healed_at.elapsed());
}

#[test]
fn a_paused_broker_is_fenced_and_comes_back_on_cont() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_for_brokers(&[1, 2, 3]);
    let paused = cluster.ids().into_iter().find(|&i| i != leader).unwrap();
    let running: Vec<u64> = cluster.ids().into_iter().filter(|&i| i != paused).collect();

    let stopped_at = Instant::now();
    cluster.stop(paused);
    cluster.wait_for("the paused broker fenced", |c| {
        (c.registered_unfenced_brokers() == running && c.fenced_brokers() == [paused]).then_some(())
    });
    let fenced_after = stopped_at.elapsed();
    // Fencing needs a missed session (2 s in the harness); much sooner
    // would mean something else fenced it.
    assert!(
        fenced_after >= Duration::from_millis(1500),
        "fenced after only {fenced_after:?}"
    );
    eprintln!("node {paused} stopped: fenced in {fenced_after:?}");

    cluster.cont(paused);
    cluster.wait_for_brokers(&[1, 2, 3]);
}

/// Five nodes as KRaft runs them: 1–3 are voters (combined mode), 4 and 5
/// brokers only, following the quorum through a controller client. All
/// five register; brokers 4 and 5 get replicas and lead partitions, and a
/// partition they lead takes `acks=all` records that read back whole and
/// reach its followers.
#[test]
fn five_nodes_three_voters_two_brokers_all_take_partitions() {
    const TOPIC: &str = "spread";
    let started = Instant::now();
    let cluster = Cluster::start(5);
    cluster.wait_for_brokers(&[1, 2, 3, 4, 5]);
    let registered = started.elapsed();
    for id in 1..=5 {
        let view = cluster.quorum(id).expect("every node answers");
        let voters = view["voters"].as_array().map(Vec::len);
        assert_eq!(voters, Some(3), "only nodes 1–3 are voters: {view}");
        let role = if id <= 3 { "voter" } else { "broker" };
        assert_eq!(view["role"], role, "node {id}: {view}");
    }
    assert!(cluster.node(4).controller.is_none());
    let leader = cluster.active_controller().expect("an active controller");
    assert!(
        (1..=3).contains(&leader),
        "the active controller is a voter"
    );

    // RF 3 over five brokers, one partition each to lead (round-robin).
    cluster.wait_for_detail("CreateTopics spread, 5 partitions, RF 3", |c| {
        match create_topic(&c.bootstrap(), TOPIC, 5, 3, &[("min.insync.replicas", "2")]) {
            // An earlier attempt created it but its answer was lost.
            Err(e) if e.contains("TopicAlreadyExists") => Ok(()),
            other => other,
        }
    });
    let partitions: Vec<PartitionInfo> =
        (0..5).map(|p| cluster.wait_for_isr(TOPIC, p, 3)).collect();
    for broker in [4, 5] {
        assert!(
            partitions.iter().any(|p| p.replicas.contains(&broker)),
            "broker {broker} holds a replica: {partitions:?}"
        );
    }

    for broker in [4, 5] {
        let Some(partition) = partitions.iter().position(|p| p.leader == broker) else {
            panic!("no partition led by broker {broker}: {partitions:?}");
        };
        let partition = i32::try_from(partition).expect("a partition index");
        let values: Vec<String> = (0..50).map(|i| format!("{broker}-{i}")).collect();
        let report = produce_to(&cluster.bootstrap(), TOPIC, partition, &values);
        assert!(
            report.failed.is_empty() && report.fatal.is_none(),
            "acks=all to {TOPIC}-{partition} led by {broker}: {report:?}"
        );
        assert_eq!(report.acked.len(), values.len(), "{report:?}");
        let read: Vec<String> = consume_all(&cluster.bootstrap(), TOPIC, partition)
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        assert_eq!(read, values, "{TOPIC}-{partition} read back");
        // Its followers copied the leader's log byte for byte.
        let info = &partitions[partition as usize];
        let leader_log = log_bytes(&cluster.data_dir(broker as u64), TOPIC, partition);
        for &follower in info.replicas.iter().filter(|&&r| r != broker) {
            cluster.wait_for(
                &format!("broker {follower} has {TOPIC}-{partition} as broker {broker} has it"),
                |c| {
                    (log_bytes(&c.data_dir(follower as u64), TOPIC, partition) == leader_log)
                        .then_some(())
                },
            );
        }
    }
    eprintln!(
        "5 nodes registered in {registered:?}, whole test {:?}",
        started.elapsed()
    );
}

/// Brokers 4 and 5 (not voters) follow the quorum across the death of the
/// active controller: they name the new one and stay unfenced, while the
/// dead node is fenced.
#[test]
fn five_nodes_brokers_follow_a_new_active_controller() {
    let mut cluster = Cluster::start(5);
    let first = cluster.wait_for_brokers(&[1, 2, 3, 4, 5]);
    cluster.kill(first);
    let started = Instant::now();
    let survivors: Vec<u64> = (1..=5).filter(|&id| id != first).collect();
    // `active_controller` needs every running node, 4 and 5 included, to
    // name the same new leader.
    let second = cluster.wait_for_brokers(&survivors);
    assert_ne!(second, first);
    assert_eq!(cluster.fenced_brokers(), [first]);
    eprintln!(
        "controller {first} killed: brokers follow {second} after {:?}",
        started.elapsed()
    );
}

#[test]
fn kill_and_restart_keep_the_same_ports() {
    let mut cluster = Cluster::start(3);
    let leader = cluster.wait_for_brokers(&[1, 2, 3]);
    let victim = cluster.ids().into_iter().find(|&i| i != leader).unwrap();
    let before = (
        cluster.node(victim).kafka,
        cluster.node(victim).admin.clone(),
    );
    cluster.kill(victim);
    assert!(TcpStream::connect(cluster.node(victim).kafka).is_err());
    assert!(
        !cluster
            .bootstrap()
            .contains(&cluster.node(victim).advertised().to_string()),
        "a down node is not in bootstrap()"
    );
    cluster.restart(victim);
    assert_eq!(
        (
            cluster.node(victim).kafka,
            cluster.node(victim).admin.clone()
        ),
        before
    );
    cluster.wait_for_brokers(&[1, 2, 3]);
}

/// The proxy on its own: forwards, cuts open connections, refuses new ones
/// while cut, forwards again once healed.
#[test]
fn fault_proxy_cuts_and_heals() {
    let echo = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = echo.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in echo.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 || conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let proxy = FaultProxy::start(target);
    let roundtrip = |stream: &mut TcpStream| -> std::io::Result<Vec<u8>> {
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        stream.write_all(b"ping")?;
        let mut buf = [0u8; 4];
        stream.read_exact(&mut buf)?;
        Ok(buf.to_vec())
    };

    let mut open = TcpStream::connect(proxy.addr()).unwrap();
    assert_eq!(roundtrip(&mut open).unwrap(), b"ping");

    proxy.cut();
    assert!(proxy.is_cut());
    assert!(
        roundtrip(&mut open).is_err(),
        "an open link is closed by cut"
    );
    let mut refused = TcpStream::connect(proxy.addr()).expect("accepted, then closed");
    assert!(
        roundtrip(&mut refused).is_err(),
        "a new link is refused while cut"
    );

    proxy.heal();
    let mut again = TcpStream::connect(proxy.addr()).unwrap();
    assert_eq!(roundtrip(&mut again).unwrap(), b"ping");
}

/// The Kafka helpers the failover tests rely on, against one node (no
/// replication needed): CreateTopics, Metadata, the acknowledged-producer
/// thread, reading back, a raw Produce and reading the log files.
#[test]
fn kafka_helpers_work_against_a_single_node() {
    use common::kafka::{
        AckedProducer, RawAnswer, check_acked_log, consume_all, create_topic, log_bytes,
        raw_produce,
    };
    let mut cluster = Cluster::start(1);
    cluster.wait_for_brokers(&[1]);
    cluster.wait_for_detail("CreateTopics solo", |c| {
        create_topic(&c.bootstrap(), "solo", 1, 1, &[])
    });
    let info = cluster.wait_for_isr("solo", 0, 1);
    assert_eq!(
        (info.leader, info.replicas.clone()),
        (1, vec![1]),
        "{info:?}"
    );
    assert_eq!(cluster.wait_for_leader("solo", 0), 1);
    let own = common::kafka::partition_at(cluster.node(1).kafka, "solo", 0);
    assert_eq!(
        own,
        Ok(info.clone()),
        "the broker's own view on its real port"
    );
    assert!(
        cluster
            .partition_views("solo", 0)
            .contains("broker 1 sees solo-0")
    );

    let producer = AckedProducer::start(&cluster.bootstrap(), "solo", &[]);
    producer.wait_acked(&cluster, 0, 50, "50 records acknowledged");
    let report = producer.stop();
    assert!(
        report.fatal.is_none() && report.failed.is_empty(),
        "{report:?}"
    );
    assert_eq!(report.acked.len() as u64, report.sent);

    // Straight to the real port, not the proxy.
    match raw_produce(cluster.node(1).kafka, "solo", 0, "raw", -1, 5000) {
        RawAnswer::ErrorCode(0) => {}
        other => panic!("a raw acks=all Produce to a single node: {other:?}"),
    }
    let log = consume_all(&cluster.bootstrap(), "solo", 0);
    check_acked_log(&log[..log.len() - 1], &report);
    assert_eq!(log.last().map(|(_, v)| v.as_str()), Some("raw"));

    cluster.terminate(1);
    assert!(!log_bytes(&cluster.data_dir(1), "solo", 0).is_empty());
}
