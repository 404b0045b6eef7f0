//! Where a pipeline's records go: the [`Sink`] seam.
//!
//! [`KafkaProducer`] is the sink of every deployed function. [`MemorySink`]
//! keeps what it is given in memory, with the same size limit and per-record
//! outcomes, and can be told to fail a topic or refuse records, so a
//! handler's success and failure paths can be tested without a broker.

use std::collections::BTreeMap;
use std::sync::Mutex;

use futures::future::BoxFuture;
use tokio::time::Instant;

use crate::kafka::partitioner::Partitioner;
use crate::kafka::producer::{
    record_fits, Delivery, KafkaProducer, OutgoingRecord, ProduceError, ProduceOutcome,
};
use crate::pipeline::dead_letter::fit_dead_letter;

/// Something records can be produced to, one batch per call.
pub trait Sink: Sync {
    /// The largest request the sink sends (`KAFKA_MAX_MESSAGE_BYTES`).
    fn max_message_bytes(&self) -> usize;

    /// Whether `record` is small enough to be sent at all.
    fn fits(&self, record: &OutgoingRecord) -> bool {
        record_fits(record, self.max_message_bytes())
    }

    /// `letter` as it is when it fits; otherwise a stub of it that does
    /// ([`fit_dead_letter`]), keeping the `essential` headers.
    fn fit_dead_letter(&self, letter: OutgoingRecord, essential: &[&str]) -> OutgoingRecord {
        fit_dead_letter(letter, essential, |record| self.fits(record))
    }

    /// Sends `records` to `topic` and reports, per record and in order,
    /// where it landed or why it did not. Gives up at `deadline`.
    ///
    /// The future is boxed: a producer's future nests its per-partition
    /// sends deeply enough that, inlined into a handler's and then into the
    /// runtime's, its type layout exceeds the compiler's default depth. One
    /// allocation per batch settles that here, for every handler.
    fn produce<'a>(
        &'a self,
        topic: &'a str,
        records: Vec<OutgoingRecord>,
        deadline: Instant,
    ) -> BoxFuture<'a, Vec<ProduceOutcome>>;
}

impl Sink for KafkaProducer {
    fn max_message_bytes(&self) -> usize {
        self.config().max_message_bytes
    }

    fn produce<'a>(
        &'a self,
        topic: &'a str,
        records: Vec<OutgoingRecord>,
        deadline: Instant,
    ) -> BoxFuture<'a, Vec<ProduceOutcome>> {
        Box::pin(KafkaProducer::produce(self, topic, records, deadline))
    }
}

/// A sink that keeps every record in memory, by topic.
///
/// Records are placed as the producer places them (Java's murmur2 for keyed
/// records, round-robin otherwise) over a fixed number of partitions, and
/// each partition counts its own offsets from 0.
#[derive(Debug)]
pub struct MemorySink {
    max_message_bytes: usize,
    partitions: usize,
    partitioner: Partitioner,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    topics: BTreeMap<String, Vec<(Delivery, OutgoingRecord)>>,
    failing: BTreeMap<String, ProduceError>,
    refuse_values_containing: Vec<(String, Vec<u8>)>,
    calls: usize,
}

impl Default for MemorySink {
    fn default() -> Self {
        Self::new()
    }
}

impl MemorySink {
    /// A sink with the producer's default limit (1 MiB) and 3 partitions
    /// per topic.
    pub fn new() -> Self {
        Self {
            max_message_bytes: 1_048_576,
            partitions: 3,
            partitioner: Partitioner::default(),
            state: Mutex::new(State::default()),
        }
    }

    /// Sets the largest request, as `KAFKA_MAX_MESSAGE_BYTES` does.
    pub fn with_max_message_bytes(mut self, limit: usize) -> Self {
        self.max_message_bytes = limit;
        self
    }

    /// Makes every later produce to `topic` fail with `error`, as a broker
    /// outage would; [`MemorySink::recover`] ends it.
    pub fn fail_topic(&self, topic: &str, error: ProduceError) {
        self.lock().failing.insert(topic.to_owned(), error);
    }

    /// Ends every failure set with [`MemorySink::fail_topic`].
    pub fn recover(&self) {
        self.lock().failing.clear();
    }

    /// Makes `topic` refuse any record whose value contains `needle` (a
    /// permanent error, as `INVALID_RECORD` is).
    pub fn refuse_values_containing(&self, topic: &str, needle: &[u8]) {
        self.lock()
            .refuse_values_containing
            .push((topic.to_owned(), needle.to_vec()));
    }

    /// The records `topic` holds, in the order they were accepted.
    pub fn records(&self, topic: &str) -> Vec<OutgoingRecord> {
        self.lock()
            .topics
            .get(topic)
            .map(|records| records.iter().map(|(_, r)| r.clone()).collect())
            .unwrap_or_default()
    }

    /// How many produce calls were made, to any topic.
    pub fn calls(&self) -> usize {
        self.lock().calls
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A test that panicked while holding the lock has failed already;
        // what it left is still worth reading.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Sink for MemorySink {
    fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    fn produce<'a>(
        &'a self,
        topic: &'a str,
        records: Vec<OutgoingRecord>,
        _deadline: Instant,
    ) -> BoxFuture<'a, Vec<ProduceOutcome>> {
        let mut state = self.lock();
        state.calls += 1;
        let failing = state.failing.get(topic).cloned();
        let refused: Vec<Vec<u8>> = state
            .refuse_values_containing
            .iter()
            .filter(|(t, _)| t == topic)
            .map(|(_, needle)| needle.clone())
            .collect();
        let stored = state.topics.entry(topic.to_owned()).or_default();
        let outcomes = records
            .into_iter()
            .map(|record| {
                let partition = self
                    .partitioner
                    .partition(record.key.as_deref(), self.partitions);
                if !self.fits(&record) {
                    return Err(ProduceError::TooLarge {
                        size: record.size(),
                        limit: self.max_message_bytes,
                    });
                }
                if let Some(error) = &failing {
                    return Err(error.clone());
                }
                let value = record.value.as_deref().unwrap_or_default();
                if refused.iter().any(|needle| contains(value, needle)) {
                    return Err(ProduceError::Rejected {
                        partition,
                        reason: "InvalidRecord".into(),
                        source: None,
                    });
                }
                let offset = stored
                    .iter()
                    .filter(|(d, _)| d.partition == partition)
                    .count() as i64;
                let delivery = Delivery { partition, offset };
                stored.push((delivery, record));
                Ok(delivery)
            })
            .collect();
        Box::pin(std::future::ready(outcomes))
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, value: &str) -> OutgoingRecord {
        OutgoingRecord {
            key: Some(key.into()),
            value: Some(value.into()),
            ..OutgoingRecord::default()
        }
    }

    #[tokio::test]
    async fn the_memory_sink_keeps_order_and_counts_offsets_per_partition() {
        let sink = MemorySink::new();
        let outcomes = sink
            .produce(
                "t",
                vec![record("a", "1"), record("a", "2"), record("b", "3")],
                Instant::now(),
            )
            .await;
        let deliveries: Vec<Delivery> = outcomes.into_iter().map(Result::unwrap).collect();
        assert_eq!(deliveries[0].partition, deliveries[1].partition);
        assert_eq!((deliveries[0].offset, deliveries[1].offset), (0, 1));
        assert_eq!(sink.records("t").len(), 3);
        assert_eq!(sink.calls(), 1);
    }

    #[tokio::test]
    async fn the_memory_sink_fails_refuses_and_limits_like_a_broker() {
        let sink = MemorySink::new().with_max_message_bytes(200);
        sink.refuse_values_containing("t", b"poison");
        let outcomes = sink
            .produce(
                "t",
                vec![
                    record("a", "poison pill"),
                    record("b", &"x".repeat(300)),
                    record("c", "fine"),
                ],
                Instant::now(),
            )
            .await;
        assert!(matches!(&outcomes[0], Err(e) if e.is_permanent()));
        assert!(matches!(&outcomes[1], Err(ProduceError::TooLarge { .. })));
        assert!(outcomes[2].is_ok());
        sink.fail_topic("t", ProduceError::Timeout { step: "produce" });
        let outcomes = sink
            .produce("t", vec![record("c", "again")], Instant::now())
            .await;
        assert!(matches!(&outcomes[0], Err(e) if !e.is_permanent()));
        sink.recover();
        assert_eq!(sink.records("t").len(), 1);
    }
}
