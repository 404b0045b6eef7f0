#!/usr/bin/env python3
"""Replays a batch that a DynamoDB or Kinesis event source mapping gave up on.

    scripts/replay.py FUNCTION SOURCE             through `cargo lambda watch` (scripts/watch.sh up)
    scripts/replay.py FUNCTION SOURCE --aws NAME  through the deployed function NAME (boto3)

SOURCE is an object from the on-failure bucket (`s3://bucket/key`, read with
boto3) or a local file. The object is Lambda's invocation record: the
failure's metadata (`requestContext`, `responseContext`, `DDBStreamBatchInfo`
or `KinesisBatchInfo`) and, for an S3 destination, `payload`, the event the
function was invoked with. That event is sent to the function again, as it
was; the producer's consumers deduplicate on `ddb-event-id`, so a record that
had reached Kafka before the failure does no harm.

Exit status: 0 when the function answered with no batch item failure, 1 when
it reported failures or errored (the object is kept; run it again later),
2 when the object cannot be replayed (no payload: an SQS or SNS destination
keeps only metadata).
"""
import argparse
import json
import sys
import urllib.request


def load(source: str) -> dict:
    if source.startswith("s3://"):
        import boto3  # comes with aws-sam-cli in .venv

        bucket, _, key = source[len("s3://"):].partition("/")
        body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        return json.loads(body)
    with open(source, "rb") as f:
        return json.load(f)


def stored_event(record: dict) -> dict:
    payload = record.get("payload")
    if payload is None:
        raise ValueError("the object has no payload: it holds metadata only (an SQS or SNS "
                         "destination); the records themselves are not in it")
    # Lambda stores the event as JSON text; a decoded object is accepted too.
    event = json.loads(payload) if isinstance(payload, str) else payload
    if not isinstance(event.get("Records"), list):
        raise ValueError("the payload is not a stream event (no Records list)")
    return event


def describe(record: dict, event: dict) -> str:
    info = record.get("DDBStreamBatchInfo") or record.get("KinesisBatchInfo") or {}
    condition = (record.get("requestContext") or {}).get("condition", "unknown condition")
    return (f"{len(event['Records'])} record(s) from {info.get('shardId', 'an unknown shard')}, "
            f"sequence numbers {info.get('startSequenceNumber', '?')}..{info.get('endSequenceNumber', '?')}, "
            f"given up on: {condition}")


def invoke_local(function: str, event: dict, port: int) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/2015-03-31/functions/{function}/invocations",
        data=json.dumps(event).encode(), method="POST",
        headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=300) as response:
        return json.loads(response.read() or b"null")


def invoke_aws(name: str, event: dict) -> dict:
    import boto3

    answer = boto3.client("lambda").invoke(FunctionName=name, Payload=json.dumps(event).encode())
    return json.loads(answer["Payload"].read() or b"null")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("function", help="the function's name under cargo lambda watch")
    parser.add_argument("source", help="s3://bucket/key or a local file")
    parser.add_argument("--aws", metavar="NAME", help="invoke the deployed function NAME instead")
    parser.add_argument("--port", type=int, default=9000, help="cargo lambda watch's port (9000)")
    args = parser.parse_args()
    try:
        record = load(args.source)
        event = stored_event(record)
    except (OSError, ValueError) as e:
        print(f"cannot replay {args.source}: {e}", file=sys.stderr)
        return 2
    print(f"replaying {describe(record, event)}")
    answer = invoke_aws(args.aws, event) if args.aws else invoke_local(args.function, event, args.port)
    print(json.dumps(answer))
    if not isinstance(answer, dict) or "errorType" in answer:
        print("the function failed; the object is kept, replay it again later", file=sys.stderr)
        return 1
    failures = answer.get("batchItemFailures") or []
    if failures:
        print(f"{len(failures)} batch item failure(s): the records from "
              f"{failures[0].get('itemIdentifier')} on were not handled; replay again later",
              file=sys.stderr)
        return 1
    print("replayed: every record handled")
    return 0


if __name__ == "__main__":
    sys.exit(main())
