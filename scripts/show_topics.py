"""Prints what landed on the demo topics, with an independent consumer
(kafka-python), one line per record: partition, offset, key, headers, value."""
import json
import sys

from kafka import KafkaConsumer, TopicPartition


def show(broker: str, topic: str) -> None:
    consumer = KafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False,
                             consumer_timeout_ms=2000, api_version=(2, 5, 0))
    partitions = consumer.partitions_for_topic(topic) or set()
    assignment = [TopicPartition(topic, p) for p in sorted(partitions)]
    consumer.assign(assignment)
    consumer.seek_to_beginning(*assignment)
    records = sorted(consumer, key=lambda r: (r.partition, r.offset))
    print(f"\n== {topic}: {len(records)} record(s)")
    for r in records:
        key = r.key.decode("utf-8", "replace") if r.key else None
        headers = {k: v.decode("utf-8", "replace") for k, v in (r.headers or [])}
        try:
            value = json.dumps(json.loads(r.value), ensure_ascii=False)
        except (TypeError, ValueError):
            value = (r.value or b"").decode("utf-8", "replace")
        print(f"  p{r.partition}@{r.offset} key={key!r}")
        if headers:
            print(f"    headers {json.dumps(headers, ensure_ascii=False)}")
        print(f"    value   {value[:300]}")
    consumer.close()


if __name__ == "__main__":
    for name in sys.argv[2:]:
        show(sys.argv[1], name)
