//! Reading a [`BrokerConfig`] from YAML: the `listener.name.<name>.*` keys
//! kept apart as text (their names are not known in advance), and the
//! settings Kafka writes as one separated string or a list. Not for
//! checking values: see `validate`.

use std::collections::BTreeMap;

use serde::de::{DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::BrokerConfig;

/// Kafka's `super.users`: `User:a;User:b` (one string, `;`-separated), or
/// a YAML list.
pub(super) fn super_users<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match ListOrText::deserialize(d)? {
        ListOrText::List(items) => items,
        ListOrText::Text(text) => text
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// The prefix of per-listener settings.
pub(crate) const LISTENER_PREFIX: &str = "listener.name.";

impl<'de> Deserialize<'de> for BrokerConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(WithListenerOverrides)
    }
}

/// Reads a config, keeping `listener.name.*` keys apart as text and handing
/// every other key to the derived reader (which refuses unknown ones).
struct WithListenerOverrides;

impl<'de> Visitor<'de> for WithListenerOverrides {
    type Value = BrokerConfig;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a mapping of broker settings")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<BrokerConfig, A::Error> {
        let mut overrides = BTreeMap::new();
        let mut config =
            BrokerConfig::deserialize(serde::de::value::MapAccessDeserializer::new(Filtered {
                inner: map,
                overrides: &mut overrides,
            }))?;
        config.listener_overrides = overrides;
        Ok(config)
    }
}

struct Filtered<'a, A> {
    inner: A,
    overrides: &'a mut BTreeMap<String, String>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Filtered<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        loop {
            let Some(key) = self.inner.next_key::<String>()? else {
                return Ok(None);
            };
            if key.starts_with(LISTENER_PREFIX) {
                let value: String = self.inner.next_value()?;
                if self.overrides.insert(key.clone(), value).is_some() {
                    return Err(serde::de::Error::custom(format!("duplicate field `{key}`")));
                }
                continue;
            }
            return seed
                .deserialize(serde::de::value::StringDeserializer::new(key))
                .map(Some);
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.inner.next_value_seed(seed)
    }
}

/// A list setting: a YAML list, or one string of comma-separated items.
#[derive(Deserialize)]
#[serde(untagged)]
enum ListOrText {
    List(Vec<String>),
    Text(String),
}

pub(super) fn list<'de, D: Deserializer<'de>, T: From<String>>(d: D) -> Result<Vec<T>, D::Error> {
    let items = match ListOrText::deserialize(d)? {
        ListOrText::List(items) => items,
        ListOrText::Text(text) => text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
    };
    Ok(items.into_iter().map(T::from).collect())
}

pub(super) fn optional_list<'de, D: Deserializer<'de>, T: From<String>>(
    d: D,
) -> Result<Option<Vec<T>>, D::Error> {
    list(d).map(Some)
}
