//! Java-compatible partitioning, so keys land where Java and kafkajs
//! producers put them.
//!
//! Kafka's default partitioner maps a keyed record to
//! `(murmur2(key) & 0x7fffffff) % partitions`, with MurmurHash2 seeded
//! `0x9747b28c`. Records without a key are spread round-robin.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The seed Kafka's `Utils.murmur2` uses.
pub const KAFKA_MURMUR2_SEED: u32 = 0x9747_b28c;

/// Kafka's `Utils.murmur2`, as a signed 32-bit value like Java returns it.
pub fn murmur2(key: &[u8]) -> i32 {
    murmur2::murmur2(key, KAFKA_MURMUR2_SEED) as i32
}

/// The partition Java's default partitioner picks for `key`.
pub fn partition_for_key(key: &[u8], partitions: usize) -> i32 {
    let positive = (murmur2(key) & 0x7fff_ffff) as u32;
    (positive % partitions.max(1) as u32) as i32
}

/// Chooses partitions: by key hash, or round-robin for records without one.
#[derive(Debug, Default)]
pub struct Partitioner {
    next_unkeyed: AtomicUsize,
}

impl Partitioner {
    /// The partition for a record with `key` on a topic of `partitions`.
    pub fn partition(&self, key: Option<&[u8]>, partitions: usize) -> i32 {
        match key {
            Some(key) => partition_for_key(key, partitions),
            None => (self.next_unkeyed.fetch_add(1, Ordering::Relaxed) % partitions.max(1)) as i32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafkas_published_vectors() {
        // From Kafka's UtilsTest.testMurmur2.
        assert_eq!(murmur2(b"21"), -973_932_308);
        assert_eq!(murmur2(b"foobar"), -790_332_482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985_981_536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1_486_304_829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58_897_971
        );
        assert_eq!(murmur2(b"abc"), 479_470_107);
    }

    #[test]
    fn keys_map_to_the_java_partition() {
        // (murmur2("foobar") & 0x7fffffff) % 6 == 1357151166 % 6 == 0
        assert_eq!(partition_for_key(b"foobar", 6), 0);
        // 479470107 % 6 == 3
        assert_eq!(partition_for_key(b"abc", 6), 3);
        for p in 1..50 {
            assert!((0..p as i32).contains(&partition_for_key(b"k", p)));
        }
    }

    #[test]
    fn unkeyed_records_go_round_robin() {
        let p = Partitioner::default();
        let got: Vec<i32> = (0..7).map(|_| p.partition(None, 3)).collect();
        assert_eq!(got, vec![0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(p.partition(Some(b"abc"), 6), 3);
    }
}
