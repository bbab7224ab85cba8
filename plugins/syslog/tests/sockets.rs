//! Real sockets: messages sent over UDP and TCP come out of `poll`.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

use fjord_plugin_syslog::Syslog;
use fjord_sdk::Record;
use fjord_sdk::testing::Harness;
use std::io::Write;
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

fn poll_until(h: &mut Harness<Syslog>, n: usize) -> Vec<Record> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while got.len() < n && Instant::now() < deadline {
        got.extend(h.poll(1000).unwrap().0);
        std::thread::sleep(Duration::from_millis(10));
    }
    got
}

fn value(r: &Record) -> &str {
    r.value_str().unwrap()
}

fn header<'a>(r: &'a Record, name: &str) -> &'a str {
    let h = r.headers.iter().find(|h| h.name == name).unwrap();
    std::str::from_utf8(h.value.as_deref().unwrap()).unwrap()
}

#[test]
fn messages_over_udp_and_both_tcp_framings() {
    let mut h = Harness::<Syslog>::new(&[("listen", "127.0.0.1:0")]).unwrap();
    let tcp = h.plugin.tcp_addr.unwrap();
    let udp = h.plugin.udp_addr.unwrap();
    assert_eq!(tcp.port(), udp.port(), "one port for both");

    let rfc5424 =
        "<34>1 2026-11-23T04:00:00.123Z db1 postgres 77 ID47 [origin ip=\"10.0.0.1\"] disk full";
    let rfc3164 = "<13>Nov 23 04:00:01 web1 cron[12]: job done";
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender
        .send_to(format!("{rfc5424}\n").as_bytes(), udp)
        .unwrap();
    let got = poll_until(&mut h, 1);
    assert_eq!(value(&got[0]), rfc5424);
    assert_eq!(header(&got[0], "transport"), "udp");
    assert_eq!(
        header(&got[0], "peer"),
        sender.local_addr().unwrap().to_string()
    );

    let mut stream = TcpStream::connect(tcp).unwrap();
    // Octet counting, then newline framing, on one connection.
    write!(stream, "{} {rfc5424}", rfc5424.len()).unwrap();
    write!(stream, "{rfc3164}\n{rfc3164}\r\n").unwrap();
    stream.flush().unwrap();
    let got = poll_until(&mut h, 3);
    let values: Vec<&str> = got.iter().map(value).collect();
    assert_eq!(values, [rfc5424, rfc3164, rfc3164]);
    assert!(got.iter().all(|r| header(r, "transport") == "tcp"));
    assert!(got[0].timestamp > 0);
}

#[test]
fn a_full_queue_drops_udp_and_counts_it() {
    let mut h = Harness::<Syslog>::new(&[
        ("listen", "127.0.0.1:0"),
        ("protocol", "udp"),
        ("queue", "2"),
    ])
    .unwrap();
    assert!(h.plugin.tcp_addr.is_none());
    let udp = h.plugin.udp_addr.unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..5 {
        sender.send_to(format!("<13>m{i}").as_bytes(), udp).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    let got = poll_until(&mut h, 2);
    assert_eq!(got.len(), 2);
    assert_eq!(h.host.counter("udp_dropped"), 3);
}

#[test]
fn a_port_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = Harness::<Syslog>::new(&[("listen", &addr), ("protocol", "tcp")]).unwrap_err();
    assert!(
        err.message()
            .contains(&format!("cannot listen on tcp {addr}")),
        "{err}"
    );
    let err = Harness::<Syslog>::new(&[("listen", "nowhere")]).unwrap_err();
    assert!(err.message().contains("config key `listen`"), "{err}");
}

#[test]
fn the_port_is_free_again_once_the_source_is_dropped() {
    let h = Harness::<Syslog>::new(&[("listen", "127.0.0.1:0")]).unwrap();
    let addr = h.plugin.tcp_addr.unwrap().to_string();
    drop(h);
    // A redeployed pipeline binds the same address at once.
    Harness::<Syslog>::new(&[("listen", &addr)]).unwrap();
}
