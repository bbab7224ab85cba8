//! `json-field`: a partitioner for JSON values that puts records with the
//! same value in one field on the same partition, whatever their key.
//!
//! Config: `field` (required), a dotted path into the value, e.g.
//! `customer.id`; a segment that is a number indexes an array
//! (`items.0.sku`). The field's value is hashed as text — a string as its
//! characters, anything else as its compact JSON (`42`, `true`,
//! `{"a":1}`) — with Kafka's murmur2, then
//! `(hash & 0x7fffffff) % partition_count`: the partition the Java client
//! would pick for a record whose key is that text. Records whose value is not
//! JSON or has no such field go round robin, as keyless records do under
//! `murmur2`.
//!
//! Not for: values that are not JSON (use `murmur2` on a key), or fields
//! whose JSON spelling varies between producers (`1` and `1.0` are different
//! texts, so different partitions).
//!
//! The hash comes from the `murmur2` crate with `KAFKA_SEED`, the same one
//! the `murmur2` partitioner uses; the tests here pin it to Kafka's own
//! vectors too. Depending on `fjord-plugin-murmur2` instead would link that
//! plugin's fixed C ABI and component exports into this one, and a feature
//! switching them off would be unified on whenever the two are built
//! together; a small, dependency-free crate both use avoids that.

use fjord_sdk::{Config, ConfigKey, Error, Partitioner, Plugin, PluginInfo};
use serde_json::Value;

/// One step of the path: an object key, or an array index when it parses as
/// one (and the key otherwise, for objects with numeric keys).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    key: String,
    index: Option<usize>,
}

/// The partitioner.
#[derive(Debug)]
pub struct JsonField {
    path: Vec<Segment>,
    /// Round-robin cursor for records without the field.
    next: u32,
}

fn parse_path(field: &str) -> Result<Vec<Segment>, Error> {
    let segments: Vec<Segment> = field
        .split('.')
        .map(|s| Segment {
            key: s.to_owned(),
            index: s.parse().ok(),
        })
        .collect();
    if segments.iter().any(|s| s.key.is_empty()) {
        return Err(Error::msg(format!(
            "config key `field`: `{field}` has an empty segment (expected e.g. `user.id`)"
        )));
    }
    Ok(segments)
}

/// Kafka's `Utils.murmur2`.
fn kafka_murmur2(bytes: &[u8]) -> i32 {
    murmur2::murmur2(bytes, murmur2::KAFKA_SEED) as i32
}

impl JsonField {
    /// The text to hash: the field's string, or its compact JSON.
    fn field_text(&self, value: &[u8]) -> Option<String> {
        let root: Value = serde_json::from_slice(value).ok()?;
        let mut v = &root;
        for s in &self.path {
            v = match v {
                Value::Object(m) => m.get(&s.key)?,
                Value::Array(a) => a.get(s.index?)?,
                _ => return None,
            };
        }
        Some(match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }
}

impl Plugin for JsonField {
    fn info() -> PluginInfo {
        PluginInfo::new("json-field", env!("CARGO_PKG_VERSION"))
            .description(
                "partitions JSON records by one field's value, hashed with Kafka's murmur2; \
                 records without it round robin",
            )
            .key(ConfigKey::required(
                "field",
                "dotted path to the field, e.g. `customer.id` (numbers index arrays)",
            ))
    }

    fn init(config: &Config) -> Result<Self, Error> {
        Ok(JsonField {
            path: parse_path(config.require("field")?)?,
            next: 0,
        })
    }
}

#[fjord_sdk::partitioner]
impl Partitioner for JsonField {
    fn partition(&mut self, _: Option<&[u8]>, value: Option<&[u8]>, partition_count: u32) -> u32 {
        let n = partition_count.max(1);
        match value.and_then(|v| self.field_text(v)) {
            Some(text) => (kafka_murmur2(text.as_bytes()) & 0x7fff_ffff) as u32 % n,
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

    fn harness(field: &str) -> Harness<JsonField> {
        Harness::new(&[("field", field)]).unwrap()
    }

    #[test]
    fn hash_is_kafkas() {
        // Apache Kafka UtilsTest.testMurmur2.
        assert_eq!(kafka_murmur2(b"21"), -973_932_308);
        assert_eq!(kafka_murmur2(b"foobar"), -790_332_482);
        assert_eq!(kafka_murmur2(b"abc"), 479_470_107);
        assert_eq!(
            kafka_murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58_897_971
        );
    }

    #[test]
    fn string_field_lands_where_a_java_key_would() {
        let mut h = harness("user");
        // "foobar" as a Java key: toPositive(-790332482) % 10 = 1357151166 % 10.
        assert_eq!(h.partition(None, Some(br#"{"user":"foobar"}"#), 10), 6);
        // "21": 1173551340 % 12.
        assert_eq!(h.partition(None, Some(br#"{"user":"21","x":[1]}"#), 12), 0);
    }

    #[test]
    fn non_string_fields_hash_their_json_text() {
        let mut h = harness("n");
        // The number 21 hashes as the text "21".
        assert_eq!(
            h.partition(None, Some(br#"{"n":21}"#), 12),
            h.partition(None, Some(br#"{"n":"21"}"#), 12)
        );
        let mut h = harness("o");
        let a = h.partition(None, Some(br#"{"o":{"b":2, "a":1}}"#), 1000);
        let b = h.partition(None, Some(br#"{"o":{"a":1,"b":2}}"#), 1000);
        assert_eq!(a, b, "objects hash by one canonical text");
    }

    #[test]
    fn nested_path_and_array_index() {
        let mut h = harness("customer.id");
        let v = br#"{"customer":{"id":"foobar","name":"x"},"total":3}"#;
        assert_eq!(h.partition(Some(b"ignored"), Some(v), 10), 6);
        let mut h = harness("items.1.sku");
        let v = br#"{"items":[{"sku":"a"},{"sku":"foobar"}]}"#;
        assert_eq!(h.partition(None, Some(v), 10), 6);
    }

    #[test]
    fn key_is_ignored() {
        let mut h = harness("id");
        let v = br#"{"id":"same"}"#;
        let p = h.partition(Some(b"k1"), Some(v), 32);
        assert_eq!(h.partition(Some(b"k2"), Some(v), 32), p);
        assert_eq!(h.partition(None, Some(v), 32), p);
    }

    #[test]
    fn records_without_the_field_round_robin() {
        let mut h = harness("a.b");
        let values: [Option<&[u8]>; 6] = [
            None,
            Some(b"not json"),
            Some(br#"{"a":1}"#),
            Some(br#"{"a":{"c":1}}"#),
            Some(br#"[1,2]"#),
            Some(br#"{"a":[{"b":1}]}"#),
        ];
        let got: Vec<u32> = values.iter().map(|v| h.partition(None, *v, 4)).collect();
        assert_eq!(got, [0, 1, 2, 3, 0, 1]);
    }

    #[test]
    fn missing_or_bad_field_config_is_refused() {
        let err = JsonField::init(&Config::default()).unwrap_err();
        assert!(err.message().contains("`field`"), "{err}");
        for bad in ["", "a..b", ".a", "a."] {
            let err = JsonField::init(&Config::from_pairs([("field", bad)])).unwrap_err();
            assert!(err.message().contains("`field`"), "{bad}: {err}");
        }
    }

    #[test]
    fn zero_partitions_does_not_panic() {
        let mut h = harness("id");
        assert_eq!(h.plugin.partition(None, Some(br#"{"id":1}"#), 0), 0);
        assert_eq!(h.plugin.partition(None, None, 0), 0);
    }

    #[test]
    fn info_lists_the_field_key() {
        let info = JsonField::info();
        assert_eq!(info.name, "json-field");
        assert_eq!(info.config_keys.len(), 1);
        assert!(info.config_keys[0].required);
    }
}
