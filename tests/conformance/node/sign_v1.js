// V1 signatures computed by the official Node.js signers, for the pytest oracle test.
//
// Usage: node sign_v1.js < cases.json   (a JSON list; answers: a JSON list, same order)
//
// Each case: {method, path, query, headers (lower-case names), secret}; each signer gets the
// headers plus the x-log-signaturemethod value its client sends. Each answer:
//   gateway  @alicloud/gateway-sls Client#getSignature: base64 HMAC-SHA256 (what it sends
//            with x-log-signaturemethod: hmac-sha256);
//   log      @alicloud/log Client#_sign: the "LOG id:sig" HMAC-SHA1 header value (only for
//            cases without a query: its resource sorts "k=v" pairs as whole strings, which
//            differs from the key order the other SDKs use; its PutLogs has no query).
// Both are the packages' own methods, called on real instances; nothing here re-implements
// a signer.
'use strict';

const GatewayClient = require('@alicloud/gateway-sls').default;
const LogClient = require('@alicloud/log');

const { runJob } = require('./json_job');

async function main(cases) {
  const gateway = new GatewayClient();
  const answers = [];
  for (const c of cases) {
    // Copies: the signers read the objects they are given, and each case is independent.
    const gatewayHeaders = Object.assign({}, c.headers, { 'x-log-signaturemethod': 'hmac-sha256' });
    const gatewaySig = await gateway.getSignature(
      c.path, c.method, Object.assign({}, c.query), gatewayHeaders, c.secret);
    let log = null;
    if (Object.keys(c.query).length === 0) {
      const client = new LogClient({ accessKeyId: 'akid', accessKeySecret: c.secret, endpoint: 'x' });
      const logHeaders = Object.assign({}, c.headers, { 'x-log-signaturemethod': 'hmac-sha1' });
      log = client._sign(c.method, c.path, {}, logHeaders,
        { accessKeyId: 'akid', accessKeySecret: c.secret });
    }
    answers.push({ gateway: gatewaySig, log });
  }
  return answers;
}

runJob(main);
