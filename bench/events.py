"""Generates the benchmark events: DynamoDB stream batches of INSERT records
(items of about 300 bytes of JSON) and, per function, an event of about
6 MB, the Lambda payload maximum.

    python bench/events.py OUT_DIR

Everything is deterministic, so every run measures the same bytes.
"""

import base64
import json
import os
import random
import sys
import urllib.parse

SIX_MB = 6 * 1024 * 1024
# Room kept under the 6 MB limit for the envelope.
TARGET = SIX_MB - 64 * 1024
STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/Orders/stream/2026-01-01T00:00:00.000"


def ddb_image(i):
    """An order of about 300 bytes once unmarshalled to JSON."""
    return {
        "id": {"S": f"order-{i:07d}"},
        "customer": {"S": f"customer-{i % 977:05d}"},
        "status": {"S": "NEW"},
        "total": {"N": f"{(i * 37) % 100000 / 100:.2f}"},
        "currency": {"S": "EUR"},
        "created_at": {"S": f"2026-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}.123Z"},
        "items": {"L": [
            {"M": {"sku": {"S": f"SKU-{i % 89:05d}"}, "qty": {"N": "2"}, "price": {"N": "19.95"}}},
            {"M": {"sku": {"S": f"SKU-{i % 97:05d}"}, "qty": {"N": "1"}, "price": {"N": "83.55"}}},
        ]},
        "tags": {"SS": ["web", "promo"]},
        "shipping": {"M": {"city": {"S": "Berlin"}, "zip": {"S": "10115"}, "express": {"BOOL": i % 2 == 0}}},
    }


def ddb_record(i):
    image = ddb_image(i)
    seq = f"{4421584500000000017450439091 + i}"
    return {
        "eventID": f"{i:032x}",
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": {
            "ApproximateCreationDateTime": 1763900000 + i // 100,
            "Keys": {"id": image["id"]},
            "NewImage": image,
            "SequenceNumber": seq,
            "SizeBytes": 300,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
        "eventSourceARN": STREAM_ARN,
    }


def fill(make, limit=TARGET, cap=10_000):
    """Records from `make` until the batch would pass `limit` bytes or `cap` records."""
    records, size = [], 0
    while len(records) < cap:
        record = make(len(records))
        n = len(json.dumps(record, separators=(",", ":"))) + 1
        if size + n > limit:
            break
        records.append(record)
        size += n
    return records


def page_visit(i):
    return {
        "url": f"https://shop.example/products/item-{i % 500}?utm_source=newsletter&utm_medium=email&utm_campaign=spring",
        "referrer": "https://www.google.com/search?q=shoes" if i % 3 else "https://mail.google.com/",
        "user_agent": ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
                       "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1") if i % 2 else
                      ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                       "Chrome/124.0 Safari/537.36"),
        "visitor_id": f"v-{i % 10007}",
        "timestamp": "2024-07-28T16:19:51.238Z",
    }


def click(i):
    """A clickstream event with the variety a real one has: distinct ids and
    times, a few event types, pages, devices and campaigns."""
    rnd = random.Random(i)
    kind = rnd.choice(["page_view"] * 6 + ["product_view"] * 3 + ["add_to_cart", "checkout"])
    event = page_visit(rnd.randrange(100_000))
    event.update({
        "event_id": "%08x-%04x-4%03x-%04x-%012x" % (rnd.getrandbits(32), rnd.getrandbits(16), rnd.getrandbits(12),
                                                   0x8000 | rnd.getrandbits(14), rnd.getrandbits(48)),
        "event_type": kind,
        "session_id": f"s-{rnd.getrandbits(40):010x}",
        "timestamp": f"2026-03-14T09:{i // 600 % 60:02d}:{i // 10 % 60:02d}.{rnd.randrange(1000):03d}Z",
        "ip": f"{rnd.randrange(1, 224)}.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}",
        "screen": {"w": rnd.choice([390, 412, 1440, 1920]), "h": rnd.choice([844, 915, 900, 1080])},
        "locale": rnd.choice(["en-US", "de-DE", "fr-FR", "en-GB", "es-ES"]),
    })
    if kind in ("product_view", "add_to_cart"):
        event["product"] = {"sku": f"SKU-{rnd.randrange(5000):05d}", "price": round(rnd.uniform(5, 300), 2)}
    return event


def kinesis_record(i):
    data = json.dumps({"orderId": f"o-{i}", "amount": 42.5, "customer": f"c-{i % 977}",
                       "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}],
                       "paid": True, "note": "x" * 300}, separators=(",", ":")).encode()
    seq = f"49590338271490256608559692538361571095921575989136{i:08d}"
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": f"user-{i % 64}",
            "sequenceNumber": seq,
            "data": base64.b64encode(data).decode(),
            "approximateArrivalTimestamp": 1545084650.987,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"shardId-000000000006:{seq}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::111122223333:role/lambda-kinesis-role",
        "awsRegion": "us-east-2",
        "eventSourceARN": "arn:aws:kinesis:us-east-2:111122223333:stream/lambda-stream",
    }


def kafka_record(i, topic="page-visits", partitions=6):
    return {
        "topic": topic,
        "partition": i % partitions,
        "offset": 1000 + i // partitions,
        "timestamp": 1722183591253 + i,
        "timestampType": "CREATE_TIME",
        "key": base64.b64encode(f"v-{i % 10007}".encode()).decode(),
        "value": base64.b64encode(json.dumps(page_visit(i)).encode()).decode(),
        "headers": [{"source-app": [119, 101, 98]}],
    }


def kafka_event(records):
    grouped = {}
    for r in records:
        grouped.setdefault(f"{r['topic']}-{r['partition']}", []).append(r)
    return {
        "eventSource": "aws:kafka",
        "eventSourceArn": "arn:aws:kafka:us-east-1:123456789012:cluster/clickstream/7c5a3b1e-0f1d-4c2b-9a51-3f2d7e6b8a90-2",
        "bootstrapServers": "b-1.clickstream.example:9098",
        "records": grouped,
    }


def cdc_record(i, sample):
    record = json.loads(json.dumps(sample))
    lines = []
    for j in range(8):
        data = json.dumps({"appid": f"rand_id_{i * 8 + j}", "payload": {"EMAIL": f"user{j}@example.com",
                           "MOBILE": "366-380-1466"}, "identity": f"user_{i}_{j}@example.com"})
        lines.append(urllib.parse.urlencode({"ts": str(1722183591238 + i * 8 + j), "ip": "FILL_ME",
                                             "useragent": "Mozilla/5.0 (X11; Linux x86_64)", "data": data}))
    cdc = record["cdc"]
    names = cdc["columnnames"]
    cdc["columnvalues"][names.index("value")] = "\n".join(lines)
    cdc["columnvalues"][names.index("offset")] = i
    cdc["nextlsn"] = i
    record["eventID"] = f"{i}.0"
    return record


def write(path, event):
    with open(path, "w") as f:
        json.dump(event, f, separators=(",", ":"))
    return os.path.getsize(path)


def write_lines(path, lines):
    with open(path, "w") as f:
        for line in lines:
            f.write(json.dumps(line, separators=(",", ":")) + "\n")


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "events")
    sizes = {}
    for n in (1000, 10000):
        sizes[f"ddb-{n}"] = write(os.path.join(out, f"ddb-{n}.json"),
                                  {"Records": [ddb_record(i) for i in range(n)]})
    sizes["ddb-6mb"] = write(os.path.join(out, "ddb-6mb.json"), {"Records": fill(ddb_record)})
    sizes["kinesis-6mb"] = write(os.path.join(out, "kinesis-6mb.json"), {"Records": fill(kinesis_record)})
    with open(os.path.join(root, "cdc-doublecloud-sample.json")) as f:
        sample = json.load(f)["Records"][0]
    sizes["cdc-6mb"] = write(os.path.join(out, "cdc-6mb.json"),
                             {"Records": fill(lambda i: cdc_record(i, sample))})
    sizes["kafka-6mb"] = write(os.path.join(out, "kafka-6mb.json"), kafka_event(fill(kafka_record)))
    # JSON-lines samples for the codec bench (shared/benches/codecs.rs): the
    # items the producer publishes (key: the id) and page visits as the tag
    # handler sees them (key: the visitor).
    write_lines(os.path.join(out, "ddb-items.jsonl"),
                ({"key": f"order-{i:07d}", "value": _plain(ddb_image(i))} for i in range(1000)))
    write_lines(os.path.join(out, "clickstream.jsonl"),
                ({"key": e["visitor_id"], "value": e} for e in map(click, range(1000))))
    item_bytes = [len(json.dumps(json.loads(json.dumps(_plain(ddb_image(i)))), separators=(",", ":")))
                  for i in range(1000)]
    meta = {"sizes": sizes, "ddb_item_json_bytes_mean": sum(item_bytes) / len(item_bytes)}
    for name in ("ddb-6mb", "kinesis-6mb", "cdc-6mb"):
        with open(os.path.join(out, f"{name}.json")) as f:
            meta[f"{name}-records"] = len(json.load(f)["Records"])
    with open(os.path.join(out, "kafka-6mb.json")) as f:
        meta["kafka-6mb-records"] = sum(len(v) for v in json.load(f)["records"].values())
    with open(os.path.join(out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(json.dumps(meta))


def _plain(item):
    """Plain JSON of an image, for the item-size statistic."""
    def conv(av):
        (t, v), = av.items()
        if t == "M":
            return _plain(v)
        if t == "L":
            return [conv(x) for x in v]
        if t == "N":
            return float(v)
        return v
    return {k: conv(v) for k, v in item.items()}


if __name__ == "__main__":
    main()
