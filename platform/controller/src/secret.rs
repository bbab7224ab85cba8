//! The internal principal's secret: the password with which brokers'
//! pipeline runtimes authenticate to other brokers (SASL/PLAIN) to write
//! internal topics. The active controller draws it once, from the
//! operating system's random source, and proposes it; the metadata every
//! broker follows carries it from then on.

use std::io::Read;

use tracing::{info, warn};

use crate::commands::Command;
use crate::controller::ControllerCore;
use crate::model::{ClusterMetadata, InternalSecret};

/// Proposes a fresh secret when `metadata` has none yet. Called by the
/// active controller's periodic loop: a failure is retried on its next
/// tick.
pub(crate) async fn ensure(core: &ControllerCore, metadata: &ClusterMetadata) {
    if metadata.internal_secret.is_some() {
        return;
    }
    let secret = match draw() {
        Ok(secret) => secret,
        Err(e) => {
            warn!(error = %e, "cannot draw the internal secret");
            return;
        }
    };
    match core
        .raft
        .client_write(Command::SetInternalSecret { secret })
        .await
    {
        Ok(r) => match r.data.result {
            Ok(_) => info!("internal secret set"),
            Err(e) => warn!(error = %e, "the internal secret was rejected"),
        },
        Err(e) => warn!(error = %e, "could not propose the internal secret"),
    }
}

/// 32 random bytes, hex-encoded.
fn draw() -> std::io::Result<InternalSecret> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(InternalSecret::new(
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_are_long_and_differ() {
        let (a, b) = (super::draw().unwrap(), super::draw().unwrap());
        assert_eq!(a.expose().len(), 64);
        assert_ne!(a, b);
        assert_eq!(format!("{a:?}"), "InternalSecret(..)");
    }
}
