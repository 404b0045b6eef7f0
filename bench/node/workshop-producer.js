'use strict';
// Peer (a): the original workshop handler's shape. For every stream record
// it unmarshals NewImage and awaits one `send` of one message (key = the
// item's id, value = the item as JSON) before moving to the next record.
const { unmarshall } = require('./unmarshall');

function makeHandler(producer, topic) {
  return async function handler(event) {
    for (const record of event.Records) {
      if (record.eventName !== 'INSERT') continue;
      const item = unmarshall(record.dynamodb.NewImage);
      await producer.send({
        topic,
        messages: [{ key: String(item.id), value: JSON.stringify(item) }],
      });
    }
    return { batchItemFailures: [] };
  };
}

module.exports = { makeHandler };
