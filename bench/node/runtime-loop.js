'use strict';
// A minimal Lambda runtime interface loop for Node.js: fetch the next
// invocation, call the handler, post its answer. Smaller than the managed
// Node.js runtime's own client, so it flatters Node's cold start if anything.
//
//   AWS_LAMBDA_RUNTIME_API=host:port node runtime-loop.js ./kinesis-logger.js
const http = require('http');
const path = require('path');

const api = process.env.AWS_LAMBDA_RUNTIME_API;
const { handler } = require(path.resolve(__dirname, process.argv[2]));
const agent = new http.Agent({ keepAlive: true });

function request(method, pathname, body) {
  const [host, port] = api.split(':');
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, path: pathname, method, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    if (body !== undefined) req.end(body); else req.end();
  });
}

async function loop() {
  for (;;) {
    const next = await request('GET', '/2018-06-01/runtime/invocation/next');
    const id = next.headers['lambda-runtime-aws-request-id'];
    try {
      const answer = await handler(JSON.parse(next.body));
      await request('POST', `/2018-06-01/runtime/invocation/${id}/response`, JSON.stringify(answer));
    } catch (e) {
      await request('POST', `/2018-06-01/runtime/invocation/${id}/error`,
        JSON.stringify({ errorType: e.name, errorMessage: e.message }));
    }
  }
}

loop().catch((e) => { console.error(e); process.exit(1); });
