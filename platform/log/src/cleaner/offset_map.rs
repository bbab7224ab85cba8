//! The cleaner's key → latest offset map, with a memory budget
//! (`log.cleaner.dedupe.buffer.size`).
//!
//! Keys are stored whole (no hash collisions can make the cleaner drop a
//! record it should keep). Each entry is charged its key length plus a
//! fixed overhead for the table slot, the offset and the allocation. The
//! table hashes with foldhash, seeded per map: keys come from producers, so
//! the hash must be fast (it runs twice per record cleaned) and not
//! predictable from outside.

use std::collections::HashMap;

use foldhash::fast::RandomState;

/// Bytes charged per entry on top of the key bytes.
pub(crate) const ENTRY_OVERHEAD: usize = 48;

#[derive(Debug)]
pub(crate) struct OffsetMap {
    entries: HashMap<Box<[u8]>, i64, RandomState>,
    used: usize,
    capacity: usize,
}

impl OffsetMap {
    pub(crate) fn new(capacity: usize) -> Self {
        OffsetMap {
            entries: HashMap::default(),
            used: 0,
            capacity,
        }
    }

    /// Whether `keys` can all be added without going over the budget
    /// (counting every key as new: an upper bound).
    pub(crate) fn fits<'a>(&self, keys: impl Iterator<Item = &'a [u8]>) -> bool {
        let need: usize = keys
            .filter(|k| !self.entries.contains_key(*k))
            .map(|k| k.len() + ENTRY_OVERHEAD)
            .sum();
        self.used + need <= self.capacity
    }

    /// Records that `key` was seen at `offset` (offsets come in increasing order).
    pub(crate) fn put(&mut self, key: &[u8], offset: i64) {
        if let Some(latest) = self.entries.get_mut(key) {
            *latest = (*latest).max(offset);
        } else {
            self.used += key.len() + ENTRY_OVERHEAD;
            self.entries.insert(key.into(), offset);
        }
    }

    /// The latest offset of `key` in the mapped range, if it occurs there.
    pub(crate) fn get(&self, key: &[u8]) -> Option<i64> {
        self.entries.get(key).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_counts_new_keys_only() {
        let mut map = OffsetMap::new(2 * (1 + ENTRY_OVERHEAD));
        map.put(b"a", 1);
        map.put(b"a", 5);
        assert!(map.fits([b"a".as_slice(), b"b".as_slice()].into_iter()));
        map.put(b"b", 6);
        assert!(!map.fits([b"c".as_slice()].into_iter()));
        assert_eq!(map.get(b"a"), Some(5));
        assert_eq!(map.get(b"c"), None);
    }
}
