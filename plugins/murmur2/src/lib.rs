//! `murmur2`: a partitioner that puts a keyed record on the same partition
//! the Java Kafka client's default partitioner would:
//! `(murmur2(key) & 0x7fffffff) % partition_count`.
//!
//! Use it when Fjord and Java (or librdkafka `murmur2_random`) producers
//! write to the same topic and a key must land on one partition whoever
//! wrote it. No config.
//!
//! Records without a key go round robin over the partitions. The Java client
//! (KIP-480) instead sticks to one partition for a whole batch, then moves
//! on: that exists to fill batches, which is the producer's concern and
//! needs to know when a batch closes. A partitioner called once per record
//! does not; cycling spreads keyless records over the partitions as evenly
//! as sticky batches do over time, with no record-to-partition promise lost,
//! since Java makes none for keyless records either.
//!
//! Not for: partitioning by something other than the record key (see the
//! `json-field` partitioner), or librdkafka's default `consistent_random`
//! (CRC32), which places keys differently.
//!
//! The hash: Kafka's `Utils.murmur2` is plain MurmurHash2 (the
//! endianness-neutral variant: little-endian 4-byte reads) with seed
//! `0x9747b28c`, including its tail handling. The `murmur2` crate computes
//! exactly that and names the seed (`KAFKA_SEED`); the tests below pin it to
//! the vectors of Kafka's and librdkafka's own test suites. The `json-field`
//! partitioner depends on the same crate rather than on this one: a plugin
//! crate exports fixed C ABI and component symbols, so linking one plugin
//! into another would clash, and a feature to switch the exports off would
//! be unified on whenever both are built together.

use fjord_sdk::{Config, Error, Partitioner, Plugin, PluginInfo};

/// Kafka's `Utils.murmur2`: the same `int` the Java client computes.
pub fn kafka_murmur2(bytes: &[u8]) -> i32 {
    murmur2::murmur2(bytes, murmur2::KAFKA_SEED) as i32
}

/// The Java client's partition for a key: `toPositive(murmur2(key)) % n`.
/// Masking the sign bit, not `abs`, is what Java does.
pub fn kafka_partition(key: &[u8], partition_count: u32) -> u32 {
    (kafka_murmur2(key) & 0x7fff_ffff) as u32 % partition_count.max(1)
}

/// The partitioner. `next` is the round-robin cursor for keyless records.
#[derive(Debug, Default)]
pub struct Murmur2 {
    next: u32,
}

impl Plugin for Murmur2 {
    fn info() -> PluginInfo {
        PluginInfo::new("murmur2", env!("CARGO_PKG_VERSION")).description(
            "partitions by key exactly as the Java Kafka client does (murmur2); \
             keyless records round robin",
        )
    }

    fn init(_: &Config) -> Result<Self, Error> {
        Ok(Murmur2::default())
    }
}

#[fjord_sdk::partitioner]
impl Partitioner for Murmur2 {
    fn partition(&mut self, key: Option<&[u8]>, _: Option<&[u8]>, partition_count: u32) -> u32 {
        let n = partition_count.max(1);
        match key {
            Some(key) => kafka_partition(key, n),
            None => {
                let p = self.next % n;
                self.next = self.next.wrapping_add(1);
                p
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_sdk::testing::Harness;

    /// Apache Kafka, clients/src/test/java/org/apache/kafka/common/utils/
    /// UtilsTest.java, `testMurmur2`.
    const KAFKA_VECTORS: [(&[u8], i32); 6] = [
        (b"21", -973_932_308),
        (b"foobar", -790_332_482),
        (b"a-little-bit-long-string", -985_981_536),
        (b"a-little-bit-longer-string", -1_486_304_829),
        (
            b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
            -58_897_971,
        ),
        (b"abc", 479_470_107),
    ];

    /// librdkafka, src/rdmurmur2.c, `unittest_murmur2`: its
    /// `java_murmur2_results`, which cover every tail length and the empty key.
    const LIBRDKAFKA_VECTORS: [(&[u8], u32); 11] = [
        (b"kafka", 0xd067_cf64),
        (b"giberish123456789", 0x8f55_2b0c),
        (b"1234", 0x9fc9_7b14),
        (b"234", 0xe7c0_09ca),
        (b"34", 0x8739_30da),
        (b"4", 0x5a4b_5ca1),
        (b"PreAmbleWillBeRemoved,ThePrePartThatIs", 0x7842_4f1c),
        (b"reAmbleWillBeRemoved,ThePrePartThatIs", 0x4a62_b377),
        (b"eAmbleWillBeRemoved,ThePrePartThatIs", 0xe0e4_e09e),
        (b"AmbleWillBeRemoved,ThePrePartThatIs", 0x62b8_b43f),
        (b"", 0x106e_08d9),
    ];

    #[test]
    fn hash_matches_kafkas_utils_test() {
        for (key, want) in KAFKA_VECTORS {
            assert_eq!(kafka_murmur2(key), want, "{}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn hash_matches_librdkafkas_java_results() {
        for (key, want) in LIBRDKAFKA_VECTORS {
            assert_eq!(
                kafka_murmur2(key) as u32,
                want,
                "{}",
                String::from_utf8_lossy(key)
            );
        }
    }

    #[test]
    fn key_to_partition_vectors() {
        // toPositive of the Java hashes above, then % n, worked by hand:
        // "21": -973932308 & 0x7fffffff = 1173551340.
        // "foobar": -790332482 & 0x7fffffff = 1357151166.
        // "abc": 479470107 stays positive.
        // "kafka": 0xd067cf64 & 0x7fffffff = 1348980580.
        let cases: [(&[u8], u32, u32); 8] = [
            (b"21", 3, 1_173_551_340 % 3),
            (b"21", 12, 1_173_551_340 % 12),
            (b"foobar", 6, 1_357_151_166 % 6),
            (b"foobar", 10, 1_357_151_166 % 10),
            (b"abc", 7, 479_470_107 % 7),
            (b"abc", 1, 0),
            (b"kafka", 10, 1_348_980_580 % 10),
            (b"kafka", 64, 1_348_980_580 % 64),
        ];
        let mut h = Harness::<Murmur2>::new(&[]).unwrap();
        for (key, n, want) in cases {
            assert_eq!(h.partition(Some(key), None, n), want, "{key:?} over {n}");
        }
        // Literal values, so a mistake in the arithmetic above shows too.
        assert_eq!(h.partition(Some(b"21"), None, 3), 0);
        assert_eq!(h.partition(Some(b"foobar"), None, 6), 0);
        assert_eq!(h.partition(Some(b"abc"), None, 7), 4);
        assert_eq!(h.partition(Some(b"kafka"), None, 10), 0);
    }

    #[test]
    fn same_key_same_partition_whatever_the_value() {
        let mut h = Harness::<Murmur2>::new(&[]).unwrap();
        let p = h.partition(Some(b"user-42"), Some(b"a"), 16);
        for v in [&b"b"[..], b"", b"{\"x\":1}"] {
            assert_eq!(h.partition(Some(b"user-42"), Some(v), 16), p);
        }
    }

    #[test]
    fn keyless_records_cycle_through_partitions() {
        let mut h = Harness::<Murmur2>::new(&[]).unwrap();
        let got: Vec<u32> = (0..7).map(|_| h.partition(None, Some(b"v"), 3)).collect();
        assert_eq!(got, [0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn zero_partitions_does_not_panic() {
        let mut h = Harness::<Murmur2>::new(&[]).unwrap();
        assert_eq!(h.plugin.partition(Some(b"k"), None, 0), 0);
        assert_eq!(h.plugin.partition(None, None, 0), 0);
    }

    #[test]
    fn info_names_the_plugin() {
        let info = Murmur2::info();
        assert_eq!(info.name, "murmur2");
        assert!(info.config_keys.is_empty());
    }
}
