//! `first-byte`: an example partitioner that sends a record to partition
//! `first byte of its key % partition count`, and keyless records to
//! partition 0.
//!
//! No config. What it shows: the smallest plugin there is. A partitioner
//! cannot fail: whatever it returns, the host takes the remainder by the
//! partition count, so it has no error to report.
//!
//! Keys starting with the same byte share a partition, so this spreads
//! keys poorly; it is for reading, not for production (the built-in
//! `murmur2` is Kafka's default).

use fjord_sdk::{Config, Error, Partitioner, Plugin, PluginInfo};

/// The partitioner.
#[derive(Debug)]
pub struct FirstByte;

impl Plugin for FirstByte {
    fn info() -> PluginInfo {
        PluginInfo::new("first-byte", env!("CARGO_PKG_VERSION"))
            .description("partitions by the first byte of the key; keyless records go to 0")
    }

    fn init(_: &Config) -> Result<Self, Error> {
        Ok(FirstByte)
    }
}

#[fjord_sdk::partitioner]
impl Partitioner for FirstByte {
    fn partition(
        &mut self,
        key: Option<&[u8]>,
        _value: Option<&[u8]>,
        partition_count: u32,
    ) -> u32 {
        match key.and_then(<[u8]>::first) {
            // `max(1)`: a count of 0 would divide by zero; the host never
            // passes one, but a panic is the worst way to find out.
            Some(&b) => u32::from(b) % partition_count.max(1),
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_sdk::testing::Harness;

    #[test]
    fn partitions_by_the_first_byte() {
        let mut h = Harness::<FirstByte>::new(&[]).unwrap();
        assert_eq!(h.partition(Some(b"a-key"), None, 4), u32::from(b'a') % 4);
        assert_eq!(
            h.partition(Some(b"b"), Some(b"value"), 4),
            u32::from(b'b') % 4
        );
        assert_eq!(h.partition(Some(&[7, 0, 0]), None, 3), 1);
    }

    #[test]
    fn keyless_and_empty_keys_go_to_partition_zero() {
        let mut h = Harness::<FirstByte>::new(&[]).unwrap();
        assert_eq!(h.partition(None, Some(b"v"), 8), 0);
        assert_eq!(h.partition(Some(b""), None, 8), 0);
    }
}
