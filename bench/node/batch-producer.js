'use strict';
// Peer (b): the same records as peer (a), sent with a single `send` for the
// whole batch (kafkajs groups them per partition itself).
const { unmarshall } = require('./unmarshall');

function makeHandler(producer, topic) {
  return async function handler(event) {
    const messages = [];
    for (const record of event.Records) {
      if (record.eventName !== 'INSERT') continue;
      const item = unmarshall(record.dynamodb.NewImage);
      messages.push({ key: String(item.id), value: JSON.stringify(item) });
    }
    if (messages.length > 0) await producer.send({ topic, messages });
    return { batchItemFailures: [] };
  };
}

module.exports = { makeHandler };
