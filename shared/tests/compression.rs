//! Every `KAFKA_COMPRESSION` codec against the broker of record (Apache
//! Kafka, started by `make test`), read back by a consumer that shares no
//! code with the producer: kafka-python, through
//! [`test_support::read_back`].
//!
//! For each codec the test checks what a consumer application sees (every
//! value and key equal, in input order per partition) and what the broker
//! holds (every record batch flagged with that codec and smaller than the
//! values it carries), so a producer that silently sent uncompressed
//! batches fails it.

// Test set-up may unwrap: a panic here is a failed test, not lost data.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Duration;

use lambda_stream_kit::kafka::{Compression, KafkaConfig, KafkaProducer, OutgoingRecord};
use tokio::time::Instant;

const PARTITIONS: i32 = 3;
/// Hundreds of records per partition request, as a full event source
/// mapping batch gives.
const RECORDS: usize = 600;

/// A clickstream-like record: repetitive JSON, as real events are, so every
/// codec has something to gain.
fn record(i: usize) -> OutgoingRecord {
    let value = format!(
        r#"{{"url":"https://shop.example/products/item-{}?utm_source=newsletter","visitor_id":"v-{}","n":{i},"tags":["channel:email","device:mobile"]}}"#,
        i % 50,
        i % 37
    );
    OutgoingRecord {
        key: Some(format!("v-{}", i % 37).into_bytes()),
        value: Some(value.into_bytes()),
        headers: BTreeMap::from([("source".to_owned(), b"compression-test".to_vec())]),
        timestamp: None,
    }
}

/// Produces [`RECORDS`] records with `codec` and checks them as kafka-python
/// reads them; `wire` is the codec's number in the batch attributes.
async fn lands_compressed_and_reads_back_equal(codec: Compression, wire: u8) {
    let broker = test_support::broker();
    let topic = test_support::unique_topic(&format!("compression-{codec}"));
    test_support::create_topic(&broker, &topic, PARTITIONS)
        .await
        .unwrap();
    let mut config = KafkaConfig::plaintext(vec![broker.clone()]);
    config.compression = codec;
    let producer = KafkaProducer::new(config);
    let records: Vec<OutgoingRecord> = (0..RECORDS).map(record).collect();
    let outcomes = producer
        .produce(
            &topic,
            records.clone(),
            Instant::now() + Duration::from_secs(20),
        )
        .await;

    // Input order per partition, as the producer promises to keep it.
    let mut expected: BTreeMap<i64, Vec<(i64, &OutgoingRecord)>> = BTreeMap::new();
    for (i, outcome) in outcomes.iter().enumerate() {
        let delivery = outcome
            .as_ref()
            .unwrap_or_else(|e| panic!("{codec}: record {i}: {e}"));
        expected
            .entry(i64::from(delivery.partition))
            .or_default()
            .push((delivery.offset, &records[i]));
    }

    let landed = test_support::read_back(&broker, &topic, PARTITIONS, RECORDS)
        .await
        .unwrap();
    for partition in 0..PARTITIONS {
        let want = expected
            .get(&i64::from(partition))
            .map_or(&[][..], Vec::as_slice);
        let got = &landed.consumed[&partition];
        assert_eq!(
            got.len(),
            want.len(),
            "{codec}: partition {partition} record count"
        );
        for (position, (entry, (offset, record))) in got.iter().zip(want).enumerate() {
            assert_eq!(
                entry.offset, *offset,
                "{codec}: partition {partition}, record {position} is out of order"
            );
            assert_eq!(
                entry.key, record.key,
                "{codec}: key at p{partition}@{offset}"
            );
            assert_eq!(
                entry.value, record.value,
                "{codec}: value at p{partition}@{offset}"
            );
        }

        let batches = &landed.batches[&partition];
        assert!(
            !want.is_empty() && !batches.is_empty(),
            "{codec}: partition {partition} got no records; pick keys that reach every partition"
        );
        let in_batches: usize = batches.iter().map(|b| b.records).sum();
        assert_eq!(in_batches, want.len(), "{codec}: p{partition}");
        for batch in batches {
            assert_eq!(
                batch.compression, wire,
                "{codec}: the batch at p{partition}@{} is not {codec}",
                batch.base_offset
            );
            if codec != Compression::None {
                // The flag alone could lie; the size cannot.
                let first = batch.base_offset;
                let values: usize = want
                    .iter()
                    .skip_while(|(offset, _)| *offset < first)
                    .take(batch.records)
                    .map(|(_, r)| r.value.as_ref().map_or(0, Vec::len))
                    .sum();
                let size = batch.bytes;
                assert!(
                    size < values,
                    "{codec}: the batch at p{partition}@{first} is {size} bytes for {values} bytes of values"
                );
            }
        }
    }
}

#[tokio::test]
#[ignore = "needs a broker and kafka-python: make test runs it"]
async fn uncompressed_batches_say_none_and_read_back_equal() {
    lands_compressed_and_reads_back_equal(Compression::None, 0).await;
}

#[tokio::test]
#[ignore = "needs a broker and kafka-python: make test runs it"]
async fn gzip_batches_say_gzip_and_read_back_equal() {
    lands_compressed_and_reads_back_equal(Compression::Gzip, 1).await;
}

#[tokio::test]
#[ignore = "needs a broker and kafka-python: make test runs it"]
async fn snappy_batches_say_snappy_and_read_back_equal() {
    lands_compressed_and_reads_back_equal(Compression::Snappy, 2).await;
}

#[tokio::test]
#[ignore = "needs a broker and kafka-python: make test runs it"]
async fn lz4_batches_say_lz4_and_read_back_equal() {
    lands_compressed_and_reads_back_equal(Compression::Lz4, 3).await;
}

#[tokio::test]
#[ignore = "needs a broker and kafka-python: make test runs it"]
async fn zstd_batches_say_zstd_and_read_back_equal() {
    lands_compressed_and_reads_back_equal(Compression::Zstd, 4).await;
}
