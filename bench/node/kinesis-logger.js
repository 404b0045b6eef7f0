'use strict';
// The Node.js peer for the cold-start comparison: the tutorial's Kinesis
// logger. It decodes each record's data and logs it, one line per record.
exports.handler = async (event) => {
  for (const record of event.Records) {
    const data = Buffer.from(record.kinesis.data, 'base64').toString('utf8');
    console.log(JSON.stringify({
      message: 'kinesis record',
      partitionKey: record.kinesis.partitionKey,
      sequenceNumber: record.kinesis.sequenceNumber,
      data,
    }));
  }
  console.log(`Successfully processed ${event.Records.length} records.`);
  return { batchItemFailures: [] };
};
