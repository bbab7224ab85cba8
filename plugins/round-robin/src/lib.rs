//! `round-robin`: a partitioner that sends records to partitions 0, 1, 2, …
//! in turn, whatever their key. No config.
//!
//! For spreading load evenly when no consumer relies on related records
//! sharing a partition. Not for keyed data whose order matters per key: use
//! `murmur2` (by key) or `json-field` (by a field of the value).
//!
//! The cycle is per plugin instance: two producers cycle independently, and
//! a restart begins again at partition 0.

use fjord_sdk::{Config, Error, Partitioner, Plugin, PluginInfo};

/// The partitioner; `next` is the partition the cycle is at.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: u32,
}

impl Plugin for RoundRobin {
    fn info() -> PluginInfo {
        PluginInfo::new("round-robin", env!("CARGO_PKG_VERSION"))
            .description("cycles through the partitions in order, ignoring the key")
    }

    fn init(_: &Config) -> Result<Self, Error> {
        Ok(RoundRobin::default())
    }
}

#[fjord_sdk::partitioner]
impl Partitioner for RoundRobin {
    fn partition(&mut self, _: Option<&[u8]>, _: Option<&[u8]>, partition_count: u32) -> u32 {
        let p = self.next % partition_count.max(1);
        // Kept below the count so a shrinking or growing count never makes
        // the cycle skip or repeat more than once, and it cannot overflow.
        self.next = (p + 1) % partition_count.max(1);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_sdk::testing::Harness;

    #[test]
    fn cycles_in_order_ignoring_the_key() {
        let mut h = Harness::<RoundRobin>::new(&[]).unwrap();
        let keys: [Option<&[u8]>; 3] = [Some(b"a"), None, Some(b"a")];
        let got: Vec<u32> = (0..8)
            .map(|i| h.partition(keys[i % 3], Some(b"v"), 4))
            .collect();
        assert_eq!(got, [0, 1, 2, 3, 0, 1, 2, 3]);
    }

    #[test]
    fn every_partition_gets_the_same_share() {
        let mut h = Harness::<RoundRobin>::new(&[]).unwrap();
        let mut counts = [0u32; 7];
        for _ in 0..700 {
            counts[h.partition(None, None, 7) as usize] += 1;
        }
        assert_eq!(counts, [100; 7]);
    }

    #[test]
    fn a_changed_partition_count_stays_in_range() {
        let mut h = Harness::<RoundRobin>::new(&[]).unwrap();
        for _ in 0..5 {
            h.plugin.partition(None, None, 8);
        }
        assert_eq!(h.plugin.partition(None, None, 3), 2);
        assert_eq!(h.plugin.partition(None, None, 3), 0);
    }

    #[test]
    fn zero_or_one_partition_is_always_zero() {
        let mut h = Harness::<RoundRobin>::new(&[]).unwrap();
        for _ in 0..3 {
            assert_eq!(h.plugin.partition(None, None, 0), 0);
            assert_eq!(h.plugin.partition(None, None, 1), 0);
        }
    }

    #[test]
    fn info_names_the_plugin() {
        let info = RoundRobin::info();
        assert_eq!(info.name, "round-robin");
        assert!(info.config_keys.is_empty());
    }
}
