//! A fault-injecting TCP forwarder: tests put one between two processes and
//! cut or heal the link at will, so a node can be partitioned without
//! killing it (a process that is alive but unreachable is the case a
//! SIGKILL never shows).
//!
//! Plain std threads: one accepts, two per forwarded connection pump bytes
//! each way. No async runtime, so a proxy works the same whether or not the
//! test runs one.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;

/// Forwards `127.0.0.1:<free port>` to a target address until cut.
pub struct FaultProxy {
    addr: SocketAddr,
    target: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    stopping: AtomicBool,
}

#[derive(Default)]
struct State {
    cut: bool,
    next_id: u64,
    /// Both ends of every open forwarded connection, so `cut` can close them.
    open: HashMap<u64, (TcpStream, TcpStream)>,
}

impl FaultProxy {
    /// A proxy to `target`, forwarding from the start.
    pub fn start(target: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a proxy port");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let acceptor = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("proxy-{}", addr.port()))
                .spawn(move || accept_loop(listener, target, shared))
                .expect("spawn the proxy thread")
        };
        FaultProxy {
            addr,
            target,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where it forwards to.
    pub fn target(&self) -> SocketAddr {
        self.target
    }

    pub fn is_cut(&self) -> bool {
        self.shared.state.lock().cut
    }

    /// Closes every forwarded connection and refuses new ones (accepted,
    /// then closed at once: the peer sees a reset link, not a dead host).
    pub fn cut(&self) {
        let open = {
            let mut state = self.shared.state.lock();
            state.cut = true;
            std::mem::take(&mut state.open)
        };
        for (client, upstream) in open.into_values() {
            let _ = client.shutdown(Shutdown::Both);
            let _ = upstream.shutdown(Shutdown::Both);
        }
    }

    /// Forwards new connections again.
    pub fn heal(&self) {
        self.shared.state.lock().cut = false;
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        self.cut();
        // Wakes the blocking accept so the thread sees `stopping`.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(listener: TcpListener, target: SocketAddr, shared: Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        if shared.state.lock().cut {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        }
        // A short connect timeout: a dead target should look like a refused
        // connection to the client, not a hang of the accept loop.
        let Ok(upstream) = TcpStream::connect_timeout(&target, Duration::from_secs(1)) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        let (Ok(client_copy), Ok(upstream_copy)) = (client.try_clone(), upstream.try_clone())
        else {
            continue;
        };
        let id = {
            // Registered under the lock that `cut` takes, and the cut flag
            // checked again: a connection accepted while `cut` ran is closed
            // here instead of slipping through.
            let mut state = shared.state.lock();
            if state.cut {
                let _ = client.shutdown(Shutdown::Both);
                let _ = upstream.shutdown(Shutdown::Both);
                continue;
            }
            let id = state.next_id;
            state.next_id += 1;
            state.open.insert(id, (client_copy, upstream_copy));
            id
        };
        let (Ok(client_read), Ok(upstream_read)) = (client.try_clone(), upstream.try_clone())
        else {
            continue;
        };
        let forward = {
            let shared = Arc::clone(&shared);
            move || pump(client_read, upstream, id, &shared)
        };
        let backward = {
            let shared = Arc::clone(&shared);
            move || pump(upstream_read, client, id, &shared)
        };
        let _ = std::thread::Builder::new()
            .name("proxy-up".into())
            .spawn(forward);
        let _ = std::thread::Builder::new()
            .name("proxy-down".into())
            .spawn(backward);
    }
}

/// Copies `from` to `to` until either side closes, then closes both: the
/// protocols behind the proxy (Kafka, the controller's RPC) never half-close,
/// so a one-sided end means the link is gone.
fn pump(mut from: TcpStream, mut to: TcpStream, id: u64, shared: &Shared) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
    shared.state.lock().open.remove(&id);
}
