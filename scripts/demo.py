"""The local pipeline behind `make demo` (scripts/demo.sh starts moto, the
broker, `cargo lambda watch` and builds mapping-runner, then runs this).

Five stages, with the event source mappings played by mapping-runner from
template.yaml's settings:
  1. raffle participants written to a DynamoDB table (INSERT, MODIFY,
     REMOVE, one poison item);
  2. its stream drives dynamo-stream-producer onto TOPIC_NAME;
  3. page visits written to the clickstream topic drive kafka-tag-handler
     onto its response and error topics;
  4. Kinesis PutRecords, one of them a KPL aggregate, drives
     kinesis-event-logger;
  5. a transfer-engine run drives cdc-enricher.
One fault: after the first wave the broker is paused (SIGSTOP) for longer
than an invocation's deadline while the second wave is written, then
resumed. A line is printed whenever a stage's counts change; the end shows
where every record went. With --check it exits non-zero unless every
record reached its destination or its dead-letter place, at least once,
with per-key order kept.
"""
import argparse
import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict

import boto3
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STARTED = time.monotonic()


def env_file(path):
    values = {}
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            values[key] = value
    return values


def stamp():
    return f"{time.monotonic() - STARTED:6.1f}s"


class Runner:
    """mapping-runner as a child process, its JSON lines tallied per mapping."""

    def __init__(self, argv, log_path):
        self.tally = defaultdict(lambda: defaultdict(int))
        self.notes = []
        self.tasks = None
        self.ready_tasks = 0
        self.ready = threading.Event()
        self.lock = threading.Lock()
        self.log = open(log_path, "w", encoding="utf-8")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     cwd=ROOT)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.log.write(line)
            self.log.flush()
            try:
                report = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                if report.get("note") == "started":
                    self.tasks = report["tasks"]
                elif report.get("note") == "ready":
                    self.ready_tasks += 1
                elif "note" in report:
                    self.notes.append(report)
                else:
                    t = self.tally[report["mapping"]]
                    t["invocations"] += 1
                    t["records"] += report["records"]
                    t["committed"] += report["committed"]
                    t["given_up"] += report["given_up"]
                    if report["answer"] != "ok":
                        t[report["answer"]] += 1
                        t["retried_batches"] += 1 if report["retried"] else 0
                if self.tasks is not None and self.ready_tasks >= self.tasks:
                    self.ready.set()

    def get(self, mapping):
        with self.lock:
            return dict(self.tally[mapping])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def kpl_aggregate(records):
    """A KPL aggregated record (magic, protobuf AggregatedRecord, MD5) of
    (partition key, data) pairs, written by hand: the format is small."""
    def varint(n):
        out = bytearray()
        while True:
            byte = n & 0x7F
            n >>= 7
            out.append(byte | (0x80 if n else 0))
            if not n:
                return bytes(out)

    def field(number, payload):
        return varint(number << 3 | 2) + varint(len(payload)) + payload

    keys = sorted({key for key, _ in records})
    body = b"".join(field(1, key.encode()) for key in keys)
    for key, data in records:
        inner = varint(1 << 3 | 0) + varint(keys.index(key)) + field(3, data)
        body += field(3, inner)
    return b"\xf3\x89\x9a\xc2" + body + hashlib.md5(body).digest()


def read_topic(broker, topic, marker):
    """Every record of `topic` whose value names this run, in offset order per partition."""
    consumer = KafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False,
                             consumer_timeout_ms=2500, api_version=(2, 5, 0))
    partitions = sorted(consumer.partitions_for_topic(topic) or set())
    assignment = [TopicPartition(topic, p) for p in partitions]
    consumer.assign(assignment)
    consumer.seek_to_beginning(*assignment)
    records = [r for r in consumer if r.value and marker in r.value]
    consumer.close()
    return sorted(records, key=lambda r: (r.partition, r.offset))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--pause", type=float, default=35.0,
                        help="seconds the broker is paused (over the 30 s deadline budget under cargo lambda watch)")
    parser.add_argument("--aws", required=True)
    parser.add_argument("--broker", required=True)
    parser.add_argument("--lambda-port", required=True)
    parser.add_argument("--broker-pid", type=int, required=True)
    parser.add_argument("--runner", required=True)
    parser.add_argument("--watch-log", required=True)
    parser.add_argument("--state", required=True)
    args = parser.parse_args()
    local = env_file(os.path.join(ROOT, "local.env"))
    run = f"demo{int(time.time())}"
    failures = []

    aws = dict(endpoint_url=f"http://{args.aws}", region_name="us-east-1",
               aws_access_key_id="local", aws_secret_access_key="local")
    dynamodb = boto3.client("dynamodb", **aws)
    kinesis = boto3.client("kinesis", **aws)
    s3 = boto3.client("s3", **aws)

    table, stream_name, bucket = f"raffle-{run}", f"clicks-log-{run}", "stream-failures"
    dynamodb.create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    stream_arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    kinesis.create_stream(StreamName=stream_name, ShardCount=1)
    s3.create_bucket(Bucket=bucket)
    print(f"{stamp()}  moto: table {table} (stream on), Kinesis stream {stream_name}, bucket {bucket}")

    runner = Runner([
        args.runner, "run",
        "--aws", args.aws, "--broker", args.broker, "--lambda", f"127.0.0.1:{args.lambda_port}",
        "--failure-bucket", bucket, "--offsets", os.path.join(args.state, "offsets.json"),
        "--parameter", f"SelfManagedKafkaBootstrapServers={args.broker}",
        "--parameter", "TagSourceTopic=clicks",
        "--map", f"DynamoStreamProducerTrigger=dynamo-stream-producer=dynamodb:{stream_arn}",
        "--map", f"KinesisEventLoggerTrigger=kinesis-event-logger=kinesis:{stream_name}",
        "--map", "KafkaTagHandlerSelfManagedTrigger=kafka-tag-handler=kafka:clicks",
    ], os.path.join(args.state, "runner.log"))
    if not runner.ready.wait(60):
        sys.exit("mapping-runner did not start; see " + os.path.join(args.state, "runner.log"))
    print(f"{stamp()}  mapping-runner polling the stream, the Kinesis shard and topic clicks")

    shown = {}

    def show(stage, line):
        if shown.get(stage) != line:
            shown[stage] = line
            print(f"{stamp()}  [{stage}] {line}", flush=True)

    def tally_line(mapping, what):
        t = runner.get(mapping)
        line = (f"{what} {t.get('committed', 0)}; {t.get('invocations', 0)} invocations "
                f"with {t.get('records', 0)} records, retries included")
        if t.get("error") or t.get("partial"):
            line += f" (answers: {t.get('partial', 0)} partial, {t.get('error', 0)} error;"
            line += f" {t.get('retried_batches', 0)} batch(es) retried)"
        if t.get("given_up"):
            line += f", {t['given_up']} to the failure store"
        return line

    def wait_for(mapping, committed, timeout, stage, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            show(stage, tally_line(mapping, what))
            t = runner.get(mapping)
            if t.get("committed", 0) + t.get("given_up", 0) >= committed:
                return True
            time.sleep(0.5)
        failures.append(f"{mapping}: {committed} records not settled in {timeout:.0f} s")
        return False

    # ---- stage 1 and 2, first wave -------------------------------------------
    changes = []  # (id, version or None for REMOVE)

    def put(pid, version, tickets):
        dynamodb.put_item(TableName=table, Item={
            "id": {"S": pid}, "run": {"S": run}, "name": {"S": f"Participant {pid[-2:]}"},
            "tickets": {"N": str(tickets)}, "version": {"N": str(version)}})
        changes.append((pid, version))

    ids = [f"{run}-p{i:02d}" for i in range(1, 31)]
    for pid in ids:
        put(pid, 1, 1)
    show("1 dynamodb", f"{len(changes)} changes written (30 INSERT)")
    # The first invocation of each function also compiles it under cargo lambda watch.
    wait_for("DynamoStreamProducerTrigger", len(changes), 240, "2 stream -> producer", "published")

    # ---- stage 3: page visits -------------------------------------------------
    producer = KafkaProducer(bootstrap_servers=args.broker, api_version=(2, 5, 0))
    visits = 0
    for i in range(20):
        visit = {"url": f"https://shop.example/p/{i}?utm_source=newsletter&utm_medium=email",
                 "referrer": "https://www.google.com/", "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
                 "visitor_id": f"{run}-v{i:02d}", "timestamp": "2026-12-02T12:00:00Z"}
        producer.send("clicks", key=visit["visitor_id"].encode(), value=json.dumps(visit).encode())
        visits += 1
    bad_visits = [f'not json {run}-bad1'.encode(), json.dumps({"visitor_id": f"{run}-bad2"}).encode()]
    for value in bad_visits:
        producer.send("clicks", key=b"bad", value=value)
    producer.flush(10)
    producer.close(5)
    show("3 clicks -> tagger", f"{visits + len(bad_visits)} page visits written ({len(bad_visits)} unusable)")
    wait_for("KafkaTagHandlerSelfManagedTrigger", visits + len(bad_visits), 240, "3 clicks -> tagger",
             "committed")

    # ---- the fault, and the second wave written into it -------------------------
    retried_before_pause = runner.get("DynamoStreamProducerTrigger").get("retried_batches", 0)
    os.kill(args.broker_pid, signal.SIGSTOP)
    paused_at = time.monotonic()
    print(f"{stamp()}  [fault] broker paused for {args.pause:.0f} s (an invocation's budget is 30 s)", flush=True)
    try:
        for pid in ids[:10]:
            put(pid, 2, 2)
        for pid in ids[25:]:
            dynamodb.delete_item(TableName=table, Key={"id": {"S": pid}})
            changes.append((pid, None))
        # Nested deeper than DynamoDB's 32 levels: moto stores it, the
        # producer cannot turn it into JSON and dead-letters it.
        deep = {"S": "bottom"}
        for _ in range(40):
            deep = {"M": {"inner": deep}}
        dynamodb.put_item(TableName=table, Item={"id": {"S": f"{run}-poison"}, "run": {"S": run}, "deep": deep})
        changes.append((f"{run}-poison", 1))
        show("1 dynamodb", f"{len(changes)} changes written (30 INSERT, 10 MODIFY, 5 REMOVE, 1 poison)")

        # ---- stage 4 and 5 need no broker: they run during the pause -----------
        plain = [{"Data": json.dumps({"run": run, "event": "click", "n": i}).encode(),
                  "PartitionKey": f"user-{i % 3}"} for i in range(8)]
        inner = [(f"user-{i}", json.dumps({"run": run, "event": "kpl", "n": i}).encode()) for i in range(3)]
        aggregate = {"Data": kpl_aggregate(inner), "PartitionKey": "user-0"}
        kinesis.put_records(StreamName=stream_name, Records=plain + [aggregate])
        show("4 kinesis -> logger", f"{len(plain) + 1} records put (one a KPL aggregate of {len(inner)})")
        wait_for("KinesisEventLoggerTrigger", len(plain) + 1, 120, "4 kinesis -> logger", "committed")

        transfer = subprocess.run(
            [args.runner, "transfer", "--lambda", f"127.0.0.1:{args.lambda_port}",
             "--function", "cdc-enricher", "--records", "events/cdc-bad-records.json"],
            cwd=ROOT, capture_output=True, text=True, timeout=240)
        try:
            result = json.loads(transfer.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            result = {"failed": transfer.stderr[-500:] or "no output"}
        tables = defaultdict(int)
        for name in result.get("tables", []):
            tables[name] += 1
        show("5 transfer -> enricher",
             f"{result.get('records', 0)} records, {result.get('emitted', 0)} items emitted "
             f"({', '.join(f'{n} to {t}' for t, n in sorted(tables.items()))}), "
             f"{result.get('attempts', 0)} call(s), skipped {len(result.get('skipped', []))}")

        while time.monotonic() - paused_at < args.pause:
            show("2 stream -> producer", tally_line("DynamoStreamProducerTrigger", "published"))
            time.sleep(0.5)
    finally:
        os.kill(args.broker_pid, signal.SIGCONT)
    print(f"{stamp()}  [fault] broker resumed after {time.monotonic() - paused_at:.0f} s", flush=True)
    wait_for("DynamoStreamProducerTrigger", len(changes), 120, "2 stream -> producer", "published")
    runner.stop()

    # ---- where everything is ---------------------------------------------------
    topic, dlq = local["TOPIC_NAME"], local["DEAD_LETTER_TOPIC"]
    published = read_topic(args.broker, topic, run.encode())
    dead = read_topic(args.broker, dlq, run.encode())
    tagged = read_topic(args.broker, local["RESPONSE_TOPIC"], run.encode())
    errors = read_topic(args.broker, local["ERROR_TOPIC"], run.encode())
    stored = s3.list_objects_v2(Bucket=bucket).get("Contents", [])
    logged = [line for line in open(args.watch_log, encoding="utf-8", errors="replace")
              if '"kinesis record"' in line and run in line]
    producer_tally = runner.get("DynamoStreamProducerTrigger")

    print()
    print("== where every record went")
    print(f"  dynamodb -> {topic}: {len(changes) - 1} changes + 1 poison written; "
          f"{len(published)} records on {topic}, {len(dead)} on {dlq}, {len(stored)} in s3://{bucket}; "
          f"retried batches {producer_tally.get('retried_batches', 0)}")
    print(f"  clicks -> tagger: {visits} visits + {len(bad_visits)} unusable written; "
          f"{len(tagged)} on {local['RESPONSE_TOPIC']}, {len(errors)} on {local['ERROR_TOPIC']}")
    print(f"  kinesis -> logger: {len(plain)} records + 1 aggregate of {len(inner)}; {len(logged)} lines logged")
    print(f"  transfer -> enricher: {result.get('emitted', 0)} items emitted, "
          f"{len(result.get('skipped', []))} skipped, failed: {result.get('failed')}")

    # ---- the check ---------------------------------------------------------------
    def ddb_key(record):
        return record.key.decode("utf-8", "replace") if record.key else ""

    seen = defaultdict(list)
    for record in published:
        headers = dict(record.headers or [])
        if "ddb-sequence-number" not in headers:
            failures.append(f"a record on {topic} has no ddb-sequence-number header: {record.value[:100]!r}")
            continue
        seen[ddb_key(record)].append(int(headers["ddb-sequence-number"]))
    expected = [c for c in changes if not c[0].endswith("-poison")]
    written_per_key = defaultdict(int)
    for pid, _ in expected:
        written_per_key[pid] += 1
    for pid, count in written_per_key.items():
        # At least once: a redelivery repeats a run of changes, so the
        # first occurrences must be in order and the last record is the
        # newest change.
        on_topic = seen.get(pid, [])
        firsts = list(dict.fromkeys(on_topic))
        if len(firsts) < count:
            failures.append(f"{pid}: {count} changes written, {len(firsts)} distinct on {topic}")
        if firsts != sorted(firsts) or (on_topic and on_topic[-1] != max(on_topic)):
            failures.append(f"{pid}: out of order on {topic}: {on_topic}")
    if len(dead) < 1 or not any(b"-poison" in r.value for r in dead):
        failures.append(f"the poison item is not on {dlq}")
    if stored:
        failures.append(f"{len(stored)} batch(es) in the failure store; none expected")
    if producer_tally.get("retried_batches", 0) <= retried_before_pause:
        failures.append("the broker pause caused no retry: the fault was not exercised")
    visitor_ids = {f"{run}-v{i:02d}" for i in range(visits)}
    tagged_ids = {i for i in visitor_ids if any(i.encode() in r.value for r in tagged)}
    if tagged_ids != visitor_ids:
        failures.append(f"visits not tagged: {sorted(visitor_ids - tagged_ids)}")
    for value in bad_visits:
        marker_of_bad = value[-len(run) - 5:]
        if not any(marker_of_bad in r.value for r in errors):
            failures.append(f"unusable visit {value!r} is not on {local['ERROR_TOPIC']}")
    kinesis_sent = [json.loads(r["Data"]) for r in plain] + [json.loads(d) for _, d in inner]
    logged_data = []
    for line in logged:
        try:
            logged_data.append(json.loads(line).get("data"))
        except ValueError:
            pass
    for sent in kinesis_sent:
        if sent not in logged_data:
            failures.append(f"Kinesis record {sent} was not logged")
    if result.get("failed") or result.get("skipped") or not result.get("emitted"):
        failures.append(f"transfer: {result}")

    print()
    if failures:
        print("NOT EVERYTHING ARRIVED:")
        for failure in failures:
            print("  - " + failure)
    else:
        print(f"nothing lost: every record is at its destination or its dead-letter place ({stamp()})")
    if args.check and failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
