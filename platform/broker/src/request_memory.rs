//! `queued.max.request.bytes`: the memory of requests read but not yet
//! answered, across all connections of a broker.
//!
//! Two pools of byte permits share the budget. Three quarters hold request
//! frames: a connection takes `min(length, share)` as soon as it has read a
//! frame's length prefix, before reading the body, and keeps them until
//! the answer is written, so when the pool is empty connections stop
//! reading. The other quarter holds the decoded form of requests: after a
//! frame decodes, its array elements and tagged fields (at most
//! `request.max.array.elements`) are charged at [`DECODED_ELEMENT_BYTES`]
//! each. Frames are always taken before their decoded form, and a decoded
//! request waiting for permits is dropped (and decoded again once they are
//! granted), so nothing undecoded is waited on while holding decoded memory
//! and the two pools cannot deadlock.
//!
//! Not for: responses (a Fetch answer is bounded by `fetch.max.bytes`), nor
//! the memory of handlers below the connection.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What one decoded array element or tagged field is charged: above the
/// in-memory size of the elements requests are made of (a Metadata topic,
/// a Produce or Fetch partition, a tagged field in its map), checked by a
/// test.
pub(crate) const DECODED_ELEMENT_BYTES: usize = 128;

/// Permits count 128-byte units: small enough that the many small
/// requests parked at once (a follower's or consumer's Fetch waiting for
/// data) are not overcharged, large enough that a budget up to 512 GiB
/// fits tokio's `u32` counts.
const UNIT: usize = 128;

/// The request memory of one broker.
#[derive(Debug)]
pub(crate) struct RequestMemory {
    /// `None`: `queued.max.request.bytes` is -1, no bound.
    pools: Option<Pools>,
}

#[derive(Debug)]
struct Pools {
    frames: Arc<Semaphore>,
    frame_units: usize,
    decoded: Arc<Semaphore>,
    decoded_units: usize,
}

/// Permits held by one request; dropping it gives them back.
#[derive(Debug, Default)]
pub(crate) struct Held(Vec<OwnedSemaphorePermit>);

impl RequestMemory {
    /// A budget of `queued_max_request_bytes` (-1 or less: no bound).
    pub(crate) fn new(queued_max_request_bytes: i64) -> Self {
        let Ok(total) = usize::try_from(queued_max_request_bytes) else {
            return RequestMemory { pools: None };
        };
        let units = (total / UNIT).max(4);
        let decoded_units = units / 4;
        let frame_units = units - decoded_units;
        RequestMemory {
            pools: Some(Pools {
                frames: Arc::new(Semaphore::new(frame_units)),
                frame_units,
                decoded: Arc::new(Semaphore::new(decoded_units)),
                decoded_units,
            }),
        }
    }

    /// Waits for room for a frame of `length` bytes (or for the whole
    /// frame share, if the frame is larger).
    pub(crate) async fn frame(&self, length: usize) -> Held {
        let Some(pools) = &self.pools else {
            return Held::default();
        };
        let units = units(length).min(pools.frame_units);
        take(&pools.frames, units).await
    }

    /// Room for the decoded form of a request of `elements` elements, if
    /// there is some now.
    pub(crate) fn try_decoded(&self, elements: usize) -> Option<Held> {
        let Some(pools) = &self.pools else {
            return Some(Held::default());
        };
        let units = decoded_units(elements, pools.decoded_units);
        if units == 0 {
            return Some(Held::default());
        }
        let permit = Arc::clone(&pools.decoded)
            .try_acquire_many_owned(count(units))
            .ok()?;
        Some(Held(vec![permit]))
    }

    /// Waits for room for the decoded form of a request of `elements`
    /// elements.
    pub(crate) async fn decoded(&self, elements: usize) -> Held {
        let Some(pools) = &self.pools else {
            return Held::default();
        };
        take(&pools.decoded, decoded_units(elements, pools.decoded_units)).await
    }

    /// Bytes of frames held now (tests and metrics).
    #[cfg(test)]
    pub(crate) fn frame_bytes_held(&self) -> usize {
        self.pools
            .as_ref()
            .map_or(0, |p| (p.frame_units - p.frames.available_permits()) * UNIT)
    }
}

impl Held {
    /// Holds `other`'s permits too.
    pub(crate) fn join(&mut self, other: Held) {
        self.0.extend(other.0);
    }
}

fn units(bytes: usize) -> usize {
    bytes.div_ceil(UNIT)
}

fn decoded_units(elements: usize, share: usize) -> usize {
    units(elements.saturating_mul(DECODED_ELEMENT_BYTES)).min(share)
}

fn count(units: usize) -> u32 {
    u32::try_from(units).unwrap_or(u32::MAX)
}

async fn take(pool: &Arc<Semaphore>, units: usize) -> Held {
    if units == 0 {
        return Held::default();
    }
    match Arc::clone(pool).acquire_many_owned(count(units)).await {
        Ok(permit) => Held(vec![permit]),
        // The pools are never closed.
        Err(_) => Held::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn frames_wait_for_room_and_a_large_frame_takes_the_whole_share() {
        let memory = RequestMemory::new(4 << 20);
        let share = 3 << 20;
        let big = memory.frame(100 << 20).await;
        assert_eq!(memory.frame_bytes_held(), share);
        let waiting = tokio::time::timeout(Duration::from_millis(100), memory.frame(10)).await;
        assert!(waiting.is_err(), "a frame was read with the budget taken");
        drop(big);
        let small = memory.frame(1500).await;
        assert_eq!(memory.frame_bytes_held(), 1536);
        drop(small);
        assert_eq!(memory.frame_bytes_held(), 0);
    }

    #[tokio::test]
    async fn decoded_requests_are_charged_per_element() {
        let memory = RequestMemory::new(4 << 20);
        // 1 MiB of decoded share: 8192 elements of 128 bytes.
        let first = memory.try_decoded(8192).expect("room");
        assert!(memory.try_decoded(1).is_none());
        drop(first);
        let _all = memory.decoded(1 << 30).await;
        assert!(memory.try_decoded(8).is_none());
    }

    #[tokio::test]
    async fn minus_one_is_no_bound() {
        let memory = RequestMemory::new(-1);
        let _a = memory.frame(1 << 30).await;
        let _b = memory.frame(1 << 30).await;
        assert!(memory.try_decoded(usize::MAX).is_some());
    }

    /// The element charge covers what requests decode to.
    #[test]
    fn elements_fit_their_charge() {
        use kafka_protocol::messages::*;
        use std::mem::size_of;
        let sizes = [
            size_of::<metadata_request::MetadataRequestTopic>(),
            size_of::<produce_request::TopicProduceData>(),
            size_of::<produce_request::PartitionProduceData>(),
            size_of::<fetch_request::FetchTopic>(),
            size_of::<fetch_request::FetchPartition>(),
            size_of::<list_offsets_request::ListOffsetsPartition>(),
            size_of::<offset_commit_request::OffsetCommitRequestPartition>(),
            size_of::<offset_fetch_request::OffsetFetchRequestTopics>(),
            size_of::<create_topics_request::CreatableTopic>(),
            // A tagged field: its key and bytes, in a B-tree node.
            size_of::<(i32, bytes::Bytes)>() * 2,
        ];
        for size in sizes {
            assert!(size <= DECODED_ELEMENT_BYTES, "{sizes:?}");
        }
    }
}
