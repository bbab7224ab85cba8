//! Replica placement for new partitions: Kafka's rack-unaware assignment,
//! with the random start index and shift replaced by a replicated cursor so
//! that every controller computes the same assignment.

use crate::model::BrokerId;

/// Replica lists for partitions `first_partition..first_partition + count`.
///
/// `brokers` must be sorted and non-empty, and `replication_factor` at most
/// `brokers.len()` (the caller validates both). Partition `p`'s first replica
/// is `brokers[(start + p) % n]`; the followers are spread with a shift that
/// grows every `n` partitions, as in Kafka's `assignReplicasToBrokersRackUnaware`.
pub fn assign_replicas(
    brokers: &[BrokerId],
    first_partition: usize,
    count: usize,
    replication_factor: usize,
    cursor: u64,
) -> Vec<Vec<BrokerId>> {
    let n = brokers.len();
    if n == 0 {
        return Vec::new();
    }
    let start = (cursor % n as u64) as usize;
    let mut shift = start;
    let mut out = Vec::with_capacity(count);
    for partition in first_partition..first_partition + count {
        if partition > 0 && partition % n == 0 {
            shift += 1;
        }
        let first = (partition + start) % n;
        let mut replicas = Vec::with_capacity(replication_factor);
        replicas.push(brokers[first]);
        for j in 0..replication_factor.saturating_sub(1) {
            let step = 1 + (shift + j) % (n - 1);
            replicas.push(brokers[(first + step) % n]);
        }
        out.push(replicas);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaders_rotate_and_replicas_are_distinct() {
        let brokers = [1, 2, 3, 4];
        let got = assign_replicas(&brokers, 0, 8, 3, 0);
        let leaders: Vec<_> = got.iter().map(|r| r[0]).collect();
        assert_eq!(leaders, vec![1, 2, 3, 4, 1, 2, 3, 4]);
        for replicas in &got {
            let mut sorted = replicas.clone();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted.len(), 3, "{replicas:?}");
        }
        // Followers shift after a full round, spreading the load.
        assert_ne!(got[0][1..], got[4][1..]);
    }

    #[test]
    fn cursor_rotates_the_start() {
        let a = assign_replicas(&[1, 2, 3], 0, 1, 1, 0);
        let b = assign_replicas(&[1, 2, 3], 0, 1, 1, 1);
        assert_eq!(a, vec![vec![1]]);
        assert_eq!(b, vec![vec![2]]);
    }

    #[test]
    fn single_broker() {
        assert_eq!(assign_replicas(&[7], 0, 2, 1, 5), vec![vec![7], vec![7]]);
    }
}
