//! Throughput of `parse` on nginx lines, through the same batch path the
//! host uses. `cargo bench -p fjord-plugin-parse` prints lines/s as
//! `thrpt` (elements/s).
#![allow(
    clippy::unwrap_used,
    reason = "bench helpers: a failed setup panics with its location"
)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fjord_plugin_parse::Parse;
use fjord_sdk::testing::TestHost;
use fjord_sdk::{Config, Context, Plugin, Record};

/// Realistic, varied nginx combined lines with `$request_time`.
fn nginx_lines(n: usize) -> Vec<Record> {
    let paths = [
        "/api/users/42?expand=orders",
        "/static/app.9f3c.js",
        "/api/orders",
        "/health",
        "/checkout/payment?step=2&ref=email",
    ];
    let agents = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
        "curl/8.4.0",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    ];
    (0..n)
        .map(|i| {
            Record::new(format!(
                r#"10.{}.{}.{} - - [22/Nov/2026:10:{:02}:{:02} +0000] "{} {} HTTP/1.1" {} {} "https://shop.example.com/" "{}" 0.{:03}"#,
                i % 200,
                i % 7,
                i % 250,
                i / 60 % 60,
                i % 60,
                if i % 5 == 0 { "POST" } else { "GET" },
                paths[i % paths.len()],
                [200, 200, 200, 304, 404, 503][i % 6],
                i * 37 % 50_000,
                agents[i % agents.len()],
                i % 1000,
            ))
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let lines = nginx_lines(10_000);
    let batch = fjord_sdk::encode(&lines);
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(lines.len() as u64));
    for format in ["nginx", "auto"] {
        let mut p = Parse::init(&Config::from_pairs([("format", format)])).unwrap();
        let mut host = TestHost::default();
        group.bench_function(format!("{format}_lines"), |b| {
            b.iter(|| {
                fjord_sdk::kinds::run_process(&mut p, &batch, &mut Context::new(&mut host)).unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
