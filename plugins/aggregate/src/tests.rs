use super::*;
use fjord_sdk::Record;
use fjord_sdk::testing::Harness;
use serde_json::json;

fn harness(config: &[(&str, &str)]) -> Harness<Aggregate> {
    Harness::new(config).unwrap()
}

fn request(t: i64, route: &str, status: u32, time: f64) -> Record {
    Record::new(
        json!({"time": t, "route": route, "status": status, "request_time": time}).to_string(),
    )
}

fn values(out: &[Record]) -> Vec<Value> {
    out.iter()
        .map(|r| serde_json::from_slice(r.value.as_deref().unwrap()).unwrap())
        .collect()
}

const PER_MINUTE: &[(&str, &str)] = &[
    ("size", "1m"),
    ("time_field", "time"),
    ("group_by", "route"),
    (
        "aggregations",
        r#"{"requests":"count()","errors":"count(status >= 500)","error_rate":"ratio(status >= 500)","p50":"p50(request_time)","slowest":"max(request_time)"}"#,
    ),
];

#[test]
fn tumbling_windows_emit_once_per_window_and_group_when_they_close() {
    let mut h = harness(PER_MINUTE);
    let out = h
        .process(vec![
            request(1_000, "/a", 200, 0.1),
            request(2_000, "/b", 500, 0.3),
            request(59_999, "/a", 503, 0.5),
        ])
        .unwrap();
    assert!(out.is_empty(), "nothing closes inside the first minute");
    let out = h.process(vec![request(60_000, "/a", 200, 0.2)]).unwrap();
    let mut got = values(&out);
    got.sort_by_key(|v| v["route"].as_str().unwrap().to_owned());
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["route"], "/a");
    assert_eq!(got[0]["window_start"], 0);
    assert_eq!(got[0]["window_end"], 60_000);
    assert_eq!(got[0]["requests"], 2);
    assert_eq!(got[0]["errors"], 1);
    assert_eq!(got[0]["error_rate"], 0.5);
    assert_eq!(got[0]["slowest"], 0.5);
    assert_eq!(got[1]["route"], "/b");
    assert_eq!(got[1]["requests"], 1);
    assert_eq!(out[0].timestamp, 0);
    assert!(out.iter().any(|r| r.key.as_deref() == Some(&b"/a"[..])));
    assert_eq!(h.host.counter("windows_closed"), 2);
}

#[test]
fn late_records_count_within_lateness_and_are_dropped_after() {
    let mut config = PER_MINUTE.to_vec();
    config.push(("lateness", "10s"));
    let mut h = harness(&config);
    h.process(vec![request(1_000, "/a", 200, 0.1)]).unwrap();
    // 65 s: the first minute is still open for 10 s of lateness.
    assert!(
        h.process(vec![request(65_000, "/a", 200, 0.1)])
            .unwrap()
            .is_empty()
    );
    assert!(
        h.process(vec![request(59_000, "/a", 200, 0.1)])
            .unwrap()
            .is_empty()
    );
    let out = h.process(vec![request(70_000, "/a", 200, 0.1)]).unwrap();
    assert_eq!(values(&out)[0]["requests"], 2);
    // The first minute is closed now: a record for it is late.
    assert!(
        h.process(vec![request(30_000, "/a", 200, 0.1)])
            .unwrap()
            .is_empty()
    );
    assert_eq!(h.host.counter("late_records"), 1);
}

#[test]
fn hopping_windows_count_a_record_in_each_window_that_covers_it() {
    let mut h = harness(&[
        ("window", "hopping"),
        ("size", "30s"),
        ("advance", "10s"),
        ("aggregations", "n=count()"),
    ]);
    let at = |t: i64| Record::new("{}").with_timestamp(t);
    let mut out = h.process(vec![at(25_000), at(35_000)]).unwrap();
    out.extend(h.process(vec![at(100_000)]).unwrap());
    let mut got: Vec<(i64, u64)> = values(&out)
        .iter()
        .map(|v| {
            (
                v["window_start"].as_i64().unwrap(),
                v["n"].as_u64().unwrap(),
            )
        })
        .collect();
    got.sort();
    // 25 s is in [0,30) [10,40) [20,50); 35 s in [10,40) [20,50) [30,60).
    assert_eq!(got, [(0, 1), (10_000, 2), (20_000, 2), (30_000, 1)]);
}

#[test]
fn a_global_window_keeps_running_totals_per_key() {
    let mut h = harness(&[
        ("window", "global"),
        ("group_by", "[\"account\"]"),
        (
            "aggregations",
            r#"{"balance":"sum(amount)","postings":"count()"}"#,
        ),
    ]);
    let post = |a: &str, x: f64| Record::new(json!({"account": a, "amount": x}).to_string());
    let out = h
        .process(vec![
            post("alice", 100.0),
            post("bob", 5.0),
            post("alice", -30.0),
        ])
        .unwrap();
    let got = values(&out);
    assert_eq!(got.len(), 3);
    assert_eq!(
        got[2],
        json!({"account": "alice", "balance": 70.0, "postings": 2})
    );
    assert_eq!(out[2].key.as_deref(), Some(&b"alice"[..]));
}

#[test]
fn an_idle_partition_closes_its_windows_by_the_wall_clock() {
    let mut config = PER_MINUTE.to_vec();
    config.push(("idle", "0s"));
    let mut h = harness(&config);
    h.process(vec![request(1_000, "/a", 200, 0.1)]).unwrap();
    let now = fjord_sdk::now_ms();
    // The stream stopped: a minute of quiet closes the first window.
    assert!(h.on_timer(now).unwrap().is_empty());
    let out = h.on_timer(now + 60_000).unwrap();
    assert_eq!(values(&out)[0]["requests"], 1);
}

#[test]
fn state_survives_a_new_instance() {
    let mut h = harness(PER_MINUTE);
    h.process(vec![request(1_000, "/a", 200, 0.1)]).unwrap();
    let host = std::mem::take(&mut h.host);
    let mut h2 = harness(PER_MINUTE);
    h2.host = host;
    h2.process(vec![request(2_000, "/a", 200, 0.1)]).unwrap();
    let out = h2.process(vec![request(61_000, "/b", 200, 0.1)]).unwrap();
    assert_eq!(values(&out)[0]["requests"], 2);
}

#[test]
fn bad_records_fail_or_are_dropped() {
    let mut h = harness(PER_MINUTE);
    let err = h.process(vec![Record::new("[1]")]).unwrap_err();
    assert!(err.message().contains("not a JSON object"), "{err}");
    let err = h
        .process(vec![Record::new(r#"{"route":"/a"}"#)])
        .unwrap_err();
    assert!(err.message().contains("no event time in `time`"), "{err}");
    let mut config = PER_MINUTE.to_vec();
    config.push(("on_invalid", "drop"));
    let mut h = harness(&config);
    assert!(h.process(vec![Record::new("nope")]).unwrap().is_empty());
    assert_eq!(h.host.counter("invalid_records"), 1);
}

#[test]
fn config_errors_name_the_key() {
    let err = |c: &[(&str, &str)]| Harness::<Aggregate>::new(c).unwrap_err().to_string();
    assert!(err(&[("aggregations", "n=count()")]).contains("`size`: required"));
    assert!(err(&[("size", "1m"), ("aggregations", "n=median(x)")]).contains("`aggregations`"));
    assert!(
        err(&[
            ("window", "global"),
            ("emit", "final"),
            ("aggregations", "n=count()")
        ])
        .contains("`emit`")
    );
    assert!(
        err(&[
            ("window", "hopping"),
            ("size", "1m"),
            ("advance", "2m"),
            ("aggregations", "n=count()")
        ])
        .contains("`advance`")
    );
}

/// The start of the minute `minutes_ago` minutes before now (epoch ms).
fn minute_ago(minutes_ago: i64) -> i64 {
    let now = fjord_sdk::now_ms();
    now - now.rem_euclid(60_000) - minutes_ago * 60_000
}

#[test]
fn a_record_ahead_of_the_clock_fails_and_leaves_the_windows_open() {
    let mut h = harness(PER_MINUTE);
    let start = minute_ago(5);
    h.process(vec![request(start + 1_000, "/a", 200, 0.1)])
        .unwrap();
    // Stamped five minutes ahead: with event time following it, every
    // window up to then would close and the next records be late.
    let err = h
        .process(vec![request(
            fjord_sdk::now_ms() + 5 * 60_000,
            "/a",
            200,
            0.1,
        )])
        .unwrap_err();
    assert!(err.message().contains("ahead of the clock"), "{err}");
    assert!(err.message().contains("max_skew (1m)"), "{err}");
    assert_eq!(h.host.counter("future_records"), 1);
    h.process(vec![request(start + 2_000, "/a", 200, 0.1)])
        .unwrap();
    let out = h
        .process(vec![request(start + 61_000, "/a", 200, 0.1)])
        .unwrap();
    let got = values(&out);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["window_start"], start);
    assert_eq!(got[0]["requests"], 2);
    assert_eq!(h.host.counter("late_records"), 0);
}

#[test]
fn a_record_past_the_year_9999_fails_with_its_time_in_ms() {
    let mut h = harness(PER_MINUTE);
    let err = h
        .process(vec![request(i64::MAX / 2, "/a", 200, 0.1)])
        .unwrap_err();
    assert!(err.message().contains("ms since the epoch"), "{err}");
}

#[test]
fn a_record_within_max_skew_counts() {
    let mut config = PER_MINUTE.to_vec();
    config.push(("max_skew", "2m"));
    let mut h = harness(&config);
    let ahead = fjord_sdk::now_ms() + 90_000;
    assert!(
        h.process(vec![request(ahead, "/a", 200, 0.1)])
            .unwrap()
            .is_empty()
    );
    assert_eq!(h.host.counter("future_records"), 0);
}

#[test]
fn with_on_invalid_drop_a_future_record_is_dropped_and_counted() {
    let mut config = PER_MINUTE.to_vec();
    config.push(("on_invalid", "drop"));
    let mut h = harness(&config);
    let ahead = fjord_sdk::now_ms() + 5 * 60_000;
    assert!(
        h.process(vec![request(ahead, "/a", 200, 0.1)])
            .unwrap()
            .is_empty()
    );
    assert_eq!(h.host.counter("future_records"), 1);
    assert_eq!(h.host.counter("invalid_records"), 0);
}

#[test]
fn max_skew_none_lets_a_future_record_close_the_windows() {
    let mut config = PER_MINUTE.to_vec();
    config.push(("max_skew", "none"));
    let mut h = harness(&config);
    let start = minute_ago(5);
    h.process(vec![request(start + 1_000, "/a", 200, 0.1)])
        .unwrap();
    let out = h
        .process(vec![request(
            fjord_sdk::now_ms() + 5 * 60_000,
            "/a",
            200,
            0.1,
        )])
        .unwrap();
    assert_eq!(values(&out).len(), 1, "the first window closed");
    h.process(vec![request(start + 61_000, "/a", 200, 0.1)])
        .unwrap();
    assert_eq!(h.host.counter("late_records"), 1);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// However records arrive in time, with enough lateness every one
        /// is counted exactly once in its tumbling window.
        #[test]
        fn every_record_is_counted_once(times in prop::collection::vec(0i64..600_000, 1..200), batch in 1usize..20) {
            let mut h = harness(&[("size", "1m"), ("lateness", "10m"), ("aggregations", "n=count()")]);
            let mut out = Vec::new();
            for chunk in times.chunks(batch) {
                out.extend(h.process(chunk.iter().map(|&t| Record::new("{}").with_timestamp(t)).collect()).unwrap());
            }
            // Far in the future: everything closes.
            out.extend(h.process(vec![Record::new("{}").with_timestamp(10_000_000)]).unwrap());
            let mut counted = std::collections::BTreeMap::new();
            for v in values(&out) {
                let start = v["window_start"].as_i64().unwrap();
                prop_assert!(counted.insert(start, v["n"].as_u64().unwrap()).is_none(), "window {} emitted twice", start);
            }
            let mut expected = std::collections::BTreeMap::new();
            for t in &times {
                *expected.entry(t - t % 60_000).or_insert(0u64) += 1;
            }
            prop_assert_eq!(counted, expected);
        }

        /// Records stamped ahead of the clock by more than `max_skew`, in
        /// among on-time ones, fail each and take nothing from the others:
        /// every on-time record is counted once, none is late.
        #[test]
        fn future_records_cannot_make_others_late(
            records in prop::collection::vec((0i64..600_000, any::<bool>()), 1..100),
            ahead in 61_000i64..86_400_000,
        ) {
            let base = minute_ago(30);
            let mut h = harness(&[("size", "1m"), ("aggregations", "n=count()")]);
            let mut out = Vec::new();
            let mut expected = std::collections::BTreeMap::new();
            // Sorted, so with no lateness only a skewed record could make
            // one late.
            let mut records = records;
            records.sort();
            let mut future = 0;
            for (offset, skewed) in records {
                if skewed {
                    let t = fjord_sdk::now_ms() + ahead;
                    let r = Record::new("{}").with_timestamp(t);
                    prop_assert!(h.process(vec![r]).is_err());
                    future += 1;
                } else {
                    let t = base + offset;
                    out.extend(h.process(vec![Record::new("{}").with_timestamp(t)]).unwrap());
                    *expected.entry(t - t.rem_euclid(60_000)).or_insert(0u64) += 1;
                }
            }
            out.extend(h.process(vec![Record::new("{}").with_timestamp(fjord_sdk::now_ms())]).unwrap());
            let counted: std::collections::BTreeMap<i64, u64> = values(&out)
                .iter()
                .map(|v| (v["window_start"].as_i64().unwrap(), v["n"].as_u64().unwrap()))
                .collect();
            prop_assert_eq!(counted, expected);
            prop_assert_eq!(h.host.counter("late_records"), 0);
            prop_assert_eq!(h.host.counter("future_records"), future);
        }
    }
}
