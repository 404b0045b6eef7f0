'use strict';
// Times the kafkajs peers in process: the handler is called with the event
// parsed from its JSON text each time, on a producer that is already
// connected (a warm Lambda execution environment). One untimed warm-up
// call comes first.
//
//   node producer-bench.js --impl a|b --event FILE --topic T --broker HOST:PORT
//                          --runs N --out FILE [--subset K]
const fs = require('fs');
const path = require('path');
const { Kafka, Partitioners, logLevel } = require(path.join(__dirname, '..', 'node_modules', 'kafkajs'));

function args(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, '')] = argv[i + 1];
  return out;
}

async function main() {
  const a = args(process.argv.slice(2));
  const impl = { a: './workshop-producer', b: './batch-producer' }[a.impl];
  if (!impl) throw new Error('--impl must be a or b');
  let text = fs.readFileSync(a.event, 'utf8');
  const total = JSON.parse(text).Records.length;
  if (a.subset) {
    const event = JSON.parse(text);
    event.Records = event.Records.slice(0, Number(a.subset));
    text = JSON.stringify(event);
  }
  const records = JSON.parse(text).Records.length;
  const kafka = new Kafka({ clientId: `bench-kafkajs-${a.impl}`, brokers: [a.broker], logLevel: logLevel.ERROR });
  // Java-compatible murmur2: kafkajs 2's default, named to silence its notice.
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  const handler = require(impl).makeHandler(producer, a.topic);
  await handler(JSON.parse(text));
  const runsMs = [];
  for (let i = 0; i < Number(a.runs); i += 1) {
    const start = process.hrtime.bigint();
    const answer = await handler(JSON.parse(text));
    runsMs.push(Number(process.hrtime.bigint() - start) / 1e6);
    if (answer.batchItemFailures.length) throw new Error('the handler reported failures');
  }
  await producer.disconnect();
  fs.writeFileSync(a.out, JSON.stringify({
    impl: `kafkajs-${a.impl}`, event: a.event, event_records: total, records,
    runs_ms: runsMs, sent: records * (Number(a.runs) + 1), topic: a.topic,
    node: process.version, kafkajs: require(path.join(__dirname, '..', 'node_modules', 'kafkajs', 'package.json')).version,
  }));
}

main().catch((e) => { console.error(e); process.exit(1); });
