use super::*;
use fjord_sdk::testing::Harness;

fn lines(config: &[(&str, &str)], max: u32) -> Vec<String> {
    let mut h = Harness::<Generator>::new(config).unwrap();
    let (records, _) = h.poll(max).unwrap();
    records
        .iter()
        .map(|r| r.value_str().unwrap().to_owned())
        .collect()
}

#[test]
fn nginx_lines_have_the_combined_format_and_a_request_time() {
    let out = lines(&[("rate", "0"), ("services", "api")], 50);
    assert_eq!(out.len(), 50);
    for line in &out {
        let (client, rest) = line.split_once(" - - [").unwrap();
        assert_eq!(client.split('.').count(), 4, "{line}");
        let (time, rest) = rest.split_once("] \"").unwrap();
        assert!(time.ends_with(" +0000") && time.len() == 26, "{time}");
        let (request, rest) = rest.split_once("\" ").unwrap();
        let parts: Vec<&str> = request.split(' ').collect();
        assert!(parts[1].starts_with("/api/"), "{request}");
        assert_eq!(parts[2], "HTTP/1.1");
        let status: u16 = rest[..3].parse().unwrap();
        assert!((200..600).contains(&status));
        let seconds: f64 = rest.rsplit(' ').next().unwrap().parse().unwrap();
        assert!(seconds > 0.0 && seconds < 3.1, "{line}");
    }
}

#[test]
fn json_lines_parse_and_the_error_ratio_holds() {
    let out = lines(
        &[("rate", "0"), ("format", "json"), ("error_ratio", "0.1")],
        20_000,
    );
    let mut errors = 0;
    for line in &out {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let status = v["status"].as_u64().unwrap();
        errors += usize::from(status >= 500);
        assert!(
            v["path"]
                .as_str()
                .unwrap()
                .starts_with(&format!("/{}/", v["service"].as_str().unwrap()))
        );
    }
    let share = errors as f64 / out.len() as f64;
    assert!((0.08..0.12).contains(&share), "5xx share {share}");
}

#[test]
fn the_same_seed_gives_the_same_lines_and_count_stops() {
    let a = lines(&[("rate", "0"), ("seed", "7")], 100);
    let b = lines(&[("rate", "0"), ("seed", "7")], 100);
    let c = lines(&[("rate", "0"), ("seed", "8")], 100);
    let strip = |v: &[String]| -> Vec<String> {
        v.iter()
            .map(|l| l.split('[').next().unwrap().to_owned())
            .collect()
    };
    assert_eq!(strip(&a), strip(&b));
    assert_ne!(strip(&a), strip(&c));
    let mut h = Harness::<Generator>::new(&[("rate", "0"), ("count", "150")]).unwrap();
    assert_eq!(h.poll(100).unwrap().0.len(), 100);
    let (rest, position) = h.poll(100).unwrap();
    assert_eq!((rest.len(), position.as_slice()), (50, b"150".as_slice()));
    assert!(h.poll(100).unwrap().0.is_empty());
}

#[test]
fn the_rate_limits_lines_per_second() {
    let mut h = Harness::<Generator>::new(&[("rate", "2000")]).unwrap();
    let start = Instant::now();
    let mut n = 0;
    let mut end = 0.0;
    while end < 0.5 {
        n += h.poll(10_000).unwrap().0.len();
        end = start.elapsed().as_secs_f64();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Never ahead of the clock, and never more than a poll behind it.
    let n = n as f64;
    assert!(n <= end * 2000.0 + 1.0, "{n} lines in {end} s at 2000/s");
    assert!(n >= (end - 0.05) * 2000.0, "{n} lines in {end} s at 2000/s");
}

#[test]
fn bad_config_is_refused_with_the_key() {
    for (key, value) in [
        ("format", "xml"),
        ("error_ratio", "2"),
        ("rate", "fast"),
        ("services", " "),
    ] {
        let e = Harness::<Generator>::new(&[(key, value)]).unwrap_err();
        assert!(e.to_string().contains(key), "{key}: {e}");
    }
}

#[test]
fn dates_are_civil() {
    assert_eq!(civil(0), (1970, 1, 1));
    assert_eq!(civil(19_723), (2024, 1, 1));
    assert_eq!(civil(20_513), (2026, 3, 1));
}

#[test]
fn generation_speed() {
    let mut h = Harness::<Generator>::new(&[("rate", "0")]).unwrap();
    let start = Instant::now();
    let mut n = 0;
    while n < 400_000 {
        n += h.poll(4096).unwrap().0.len();
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    println!("generator: {rate:.0} lines/s (this build profile)");
    assert!(rate > 10_000.0);
}
