"""Reads a topic back with kafka-python: the independent consumer of the
broker-backed tests (test_support::read_back), which shares no code with
the producers under test.

    .venv/bin/python test-support/readback.py BROKER TOPIC PARTITIONS EXPECTED

Two independent reads, printed as one JSON object on stdout:

* "consumed": what a real consumer (KafkaConsumer) hands its application,
  per partition in the order it delivers them: [offset, key, value, headers],
  key and value base64 (null when absent), headers a list of [name, base64]. This is the path an application takes,
  codec included: kafka-python decompresses with its own libraries
  (python-snappy, lz4, zstandard), not rskafka's.
* "batches": the record batches as the broker stores and serves them, from
  raw Fetch requests: base offset, record count, size in bytes and the
  compression type of the batch attributes (0 none, 1 gzip, 2 snappy, 3 lz4,
  4 zstd). The
  consumer does not expose these, and they are what shows that the producer
  compressed at all: values alone would come back equal uncompressed too.
"""
import base64
import json
import sys
import time

from kafka import KafkaClient, KafkaConsumer, TopicPartition
from kafka.protocol.fetch import FetchRequest
from kafka.record import MemoryRecords

# The broker speaks newer versions; pinning one skips version probing, as
# scripts/show_topics.py does.
API_VERSION = (2, 5, 0)
TIMEOUT_S = 20
FETCH_MAX_BYTES = 4 * 1024 * 1024


def b64(data):
    return None if data is None else base64.b64encode(data).decode()


def consume(broker, topic, partitions, expected):
    """Every record up to the partitions' ends, once at least `expected`
    are there (or the time is up): extra records, duplicates included,
    show up rather than being cut off at the count."""
    consumer = KafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False,
                             api_version=API_VERSION)
    assignment = [TopicPartition(topic, p) for p in range(partitions)]
    consumer.assign(assignment)
    consumer.seek_to_beginning(*assignment)
    consumed = {str(p): [] for p in range(partitions)}
    deadline = time.monotonic() + TIMEOUT_S
    ends = consumer.end_offsets(assignment)
    while sum(ends.values()) < expected and time.monotonic() < deadline:
        time.sleep(0.2)
        ends = consumer.end_offsets(assignment)
    while time.monotonic() < deadline and any(consumer.position(tp) < ends[tp] for tp in assignment):
        for tp, records in consumer.poll(timeout_ms=500).items():
            for r in records:
                headers = [[name, b64(value)] for name, value in (r.headers or [])]
                consumed[str(tp.partition)].append([r.offset, b64(r.key), b64(r.value), headers])
    consumer.close()
    return consumed


def raw_batches(broker, topic, partitions, expected):
    client = KafkaClient(bootstrap_servers=broker, api_version=API_VERSION,
                         client_id="readback")
    future = client.add_topic(topic)
    client.poll(future=future)
    batches = {str(p): [] for p in range(partitions)}
    deadline = time.monotonic() + TIMEOUT_S
    for partition in range(partitions):
        tp = TopicPartition(topic, partition)
        leader = client.cluster.leader_for_partition(tp)
        if leader is None or leader < 0:
            raise SystemExit(f"no leader for {tp}")
        if not client.await_ready(leader, timeout_ms=TIMEOUT_S * 1000):
            raise SystemExit(f"cannot reach the leader of {tp}")
        offset, high_watermark = 0, None
        while high_watermark is None or offset < high_watermark:
            if time.monotonic() > deadline:
                raise SystemExit(f"{tp}: fetch stalled at offset {offset}")
            # v4: the first version carrying record batches (message format 2).
            request = FetchRequest[4](-1, 500, 1, FETCH_MAX_BYTES, 0,
                                      [(topic, [(partition, offset, FETCH_MAX_BYTES)])])
            response = client.send_and_receive(leader, request)
            (_, [(_, error_code, high_watermark, _, _, records)]), = response.topics
            if error_code != 0:
                raise SystemExit(f"{tp}: fetch error {error_code}")
            memory = MemoryRecords(records or b"")
            while memory.has_next():
                batch = memory.next_batch()
                if batch is None:
                    break
                offsets = [r.offset for r in batch]
                # A fetch may start inside a batch it already returned.
                if offsets and offsets[-1] >= offset:
                    batches[str(partition)].append({
                        "base_offset": batch.base_offset,
                        "records": len(offsets),
                        "bytes": batch.size_in_bytes,
                        "compression": batch.compression_type,
                    })
                    offset = offsets[-1] + 1
    client.close()
    return batches


def main():
    broker, topic = sys.argv[1], sys.argv[2]
    partitions, expected = int(sys.argv[3]), int(sys.argv[4])
    result = {
        "consumed": consume(broker, topic, partitions, expected),
        "batches": raw_batches(broker, topic, partitions, expected),
    }
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
