// Preloaded with `node --require`: names under `.example.test` resolve to 127.0.0.1.
//
// The official Node.js clients dial `{project}.{endpoint}` themselves and (except aliyun-sdk)
// offer no proxy setting, so the conformance suite gives them a fake endpoint
// (`sls.example.test:PORT`) and this resolver plays the hosts file (sls-protocol.md §1,
// option 3). Every other name goes to the real resolver; the clients' code is not touched.
'use strict';

const dns = require('dns');

const SUFFIX = '.example.test';
const realLookup = dns.lookup;

dns.lookup = function lookup(hostname, options, callback) {
  if (typeof options === 'function') {
    callback = options;
    options = {};
  }
  if (typeof hostname === 'string' && hostname.endsWith(SUFFIX)) {
    const all = typeof options === 'object' && options !== null && options.all;
    if (all) {
      process.nextTick(callback, null, [{ address: '127.0.0.1', family: 4 }]);
    } else {
      process.nextTick(callback, null, '127.0.0.1', 4);
    }
    return;
  }
  realLookup.call(dns, hostname, options, callback);
};
