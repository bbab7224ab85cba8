//! `fjord bench logins`: a reconnect storm — connections that each open,
//! log in (SaslHandshake, SaslAuthenticate) and close, from parallel
//! clients; reports logins/s and login latency percentiles. The client's
//! own PBKDF2 (the user's iterations) is part of every SCRAM login, as it
//! is for a real client that does not cache its salted password.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Result, bail};
use hdrhistogram::Histogram;
use parking_lot::Mutex;

use crate::client::ClientArgs;
use crate::raw::Connection;

/// `fjord bench logins` flags.
#[derive(clap::Args, Debug)]
pub struct LoginBench {
    /// Logins in all.
    #[arg(short = 'n', long, default_value_t = 1000)]
    pub logins: u64,
    /// Clients logging in at once.
    #[arg(long, default_value_t = 8)]
    pub clients: u64,
    #[command(flatten)]
    pub client: ClientArgs,
}

pub fn run(args: LoginBench) -> Result<()> {
    if args.client.sasl.login()?.is_none() {
        bail!("give a user to log in as: --sasl-user and --sasl-password");
    }
    let next = AtomicU64::new(0);
    let failed = AtomicU64::new(0);
    let latency_us = Mutex::new(Histogram::<u64>::new(3)?);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..args.clients.max(1) {
            scope.spawn(|| {
                while next.fetch_add(1, Ordering::Relaxed) < args.logins {
                    let at = Instant::now();
                    let logged_in =
                        Connection::open_any(&args.client.bootstrap_server, "fjord-bench")
                            .and_then(|mut c| c.authenticate(&args.client.sasl));
                    match logged_in {
                        Ok(()) => {
                            let us = u64::try_from(at.elapsed().as_micros()).unwrap_or(u64::MAX);
                            let _ = latency_us.lock().record(us.max(1));
                        }
                        Err(e) => {
                            if failed.fetch_add(1, Ordering::Relaxed) == 0 {
                                eprintln!("login failed: {e:#}");
                            }
                        }
                    }
                }
            });
        }
    });
    let elapsed = started.elapsed();
    let latency = latency_us.lock();
    let ok = latency.len();
    println!(
        "{ok} logins ({} failed) as {} with {} in {:.2} s: {:.0} logins/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        failed.load(Ordering::Relaxed),
        args.client.sasl.user.as_deref().unwrap_or("?"),
        args.client.sasl.mechanism,
        elapsed.as_secs_f64(),
        ok as f64 / elapsed.as_secs_f64(),
        latency.value_at_quantile(0.5) as f64 / 1000.0,
        latency.value_at_quantile(0.99) as f64 / 1000.0,
        latency.max() as f64 / 1000.0,
    );
    if failed.load(Ordering::Relaxed) > 0 {
        bail!("some logins failed");
    }
    Ok(())
}
