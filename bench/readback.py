"""Reads back every record of the given topics and checks where each landed:
its partition must be Java's default for its key,
`(murmur2(key) & 0x7fffffff) % partitions`.

    .venv/bin/python bench/readback.py BROKER TOPIC[:EXPECTED_COUNT] ...

Prints one JSON object: per topic the record count, the count per
partition and how many records sit on another partition than Java's.
"""

import json
import sys

from kafka import KafkaConsumer, TopicPartition

M = 0x5BD1E995


def murmur2(data):
    """Kafka's Utils.murmur2, unsigned."""
    length = len(data)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(length // 4):
        k = int.from_bytes(data[i * 4:i * 4 + 4], "little")
        k = (k * M) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * M) & 0xFFFFFFFF
        h = (h * M) & 0xFFFFFFFF
        h ^= k
    tail = length & ~3
    extra = length % 4
    if extra == 3:
        h ^= data[tail + 2] << 16
    if extra >= 2:
        h ^= data[tail + 1] << 8
    if extra >= 1:
        h ^= data[tail]
        h = (h * M) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * M) & 0xFFFFFFFF
    h ^= h >> 15
    return h


def java_partition(key, partitions):
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def signed(u):
    return u - (1 << 32) if u >= 1 << 31 else u


# Kafka's UtilsTest vectors.
assert signed(murmur2(b"21")) == -973932308
assert signed(murmur2(b"foobar")) == -790332482
assert signed(murmur2(b"abc")) == 479470107
assert signed(murmur2(b"a-little-bit-long-string")) == -985981536


def read(broker, topic, expected=None):
    """Every record of `topic`. Reading goes on until `expected` records are
    in and the broker has nothing more, or until it has had nothing for a
    few polls, so a produce still landing is not cut off at a high
    watermark read too early."""
    consumer = KafkaConsumer(bootstrap_servers=broker, group_id=None, enable_auto_commit=False,
                             request_timeout_ms=30000)
    try:
        partitions = sorted(consumer.partitions_for_topic(topic) or [])
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        reported = consumer.end_offsets(tps)
        per_partition = {p: 0 for p in partitions}
        seen = {p: set() for p in partitions}
        wrong = 0
        keys_seen = set()
        empty = 0
        while empty < 3:
            batch = consumer.poll(timeout_ms=1000, max_records=5000)
            if not batch:
                total = sum(per_partition.values())
                empty += 1 if expected is None or total >= expected else 0.25
                continue
            empty = 0
            for tp, messages in batch.items():
                for message in messages:
                    if message.offset in seen[tp.partition]:
                        continue
                    seen[tp.partition].add(message.offset)
                    per_partition[tp.partition] += 1
                    keys_seen.add(message.key)
                    if message.key is None or java_partition(message.key, len(partitions)) != tp.partition:
                        wrong += 1
        return {"partitions": len(partitions), "records": sum(per_partition.values()),
                "per_partition": [per_partition[p] for p in partitions], "distinct_keys": len(keys_seen),
                "not_on_java_partition": wrong,
                "reported_high_watermarks": [reported[tp] for tp in tps]}
    finally:
        consumer.close()


def main():
    broker = sys.argv[1]
    out = {}
    for spec in sys.argv[2:]:
        topic, _, expected = spec.partition(":")
        result = read(broker, topic, int(expected) if expected else None)
        if expected:
            result["expected_records"] = int(expected)
        out[topic] = result
    print(json.dumps(out))


if __name__ == "__main__":
    main()
