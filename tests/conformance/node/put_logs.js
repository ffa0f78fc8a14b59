// One PutLogs call through an official Alibaba Cloud Node.js client, for the pytest suite.
//
// Usage: node --require ./resolve_test_domain.js put_logs.js < job.json
//
// The job (JSON on stdin) names the client and carries the LogGroup; the one-line JSON
// answer on stdout is {"ok": true, "requestId": ...} or {"ok": false, "status", "code",
// "requestId", "message"}. Exit status 0 in both cases; anything else is a crash of this
// script, which pytest reports with its stderr. Every client is used through its public API
// as its README shows; none of them retries here (so one send is one request).
//
// Clients:
//   gateway     @alicloud/sls20201230 + @alicloud/gateway-sls: the OpenAPI gateway signs V1
//               with hmac-sha256 (or V4), compresses (lz4 by default, or the caller's
//               x-log-compresstype) and streams the body chunked. Its typed putLogs() cannot
//               serialize a LogGroup in this release (reqBodyType "protobuf" is unhandled by
//               gateway-sls 0.3.2: TypeError), so the call goes through the client's generic
//               execute() with a binary body, encoded with protobufjs from @alicloud/log's own
//               sls.proto (the schema an official package ships).
//   log         @alicloud/log Client.postLogStoreLogs: V1 hmac-sha1, uncompressed.
//   aliyun-sdk  aliyun-sdk ALY.SLS putLogs: V1 hmac-sha1, deflate.
'use strict';

const path = require('path');

const { runJob } = require('./json_job');

function encodeLogGroup(group) {
  const protobuf = require('protobufjs');
  const proto = path.join(path.dirname(require.resolve('@alicloud/log')), 'lib', 'sls.proto');
  const LogGroup = protobuf.loadSync(proto).lookupType('sls.LogGroup');
  const payload = {
    Logs: group.logs.map((log) => {
      const out = { Time: log.time, Contents: log.contents.map(([Key, Value]) => ({ Key, Value })) };
      if (log.timeNs !== null && log.timeNs !== undefined) out.TimeNs = log.timeNs;
      return out;
    }),
    Topic: group.topic,
    Source: group.source,
    LogTags: group.tags.map(([Key, Value]) => ({ Key, Value })),
  };
  const err = LogGroup.verify(payload);
  if (err) throw new Error(err);
  return Buffer.from(LogGroup.encode(LogGroup.create(payload)).finish());
}

async function viaGateway(job) {
  const Sls = require('@alicloud/sls20201230');
  const { $OpenApiUtil } = require('@alicloud/openapi-core');
  const $dara = require('@darabonba/typescript');
  const config = new $OpenApiUtil.Config({
    accessKeyId: job.accessKeyId,
    accessKeySecret: job.accessKeySecret,
    securityToken: job.securityToken || undefined,
    endpoint: job.endpoint,
    protocol: 'http',
    signatureVersion: job.signatureVersion,
    regionId: job.region || undefined,
  });
  const client = new Sls.default(config);
  const headers = Object.assign({}, job.headers || {});
  if (job.compressType) headers['x-log-compresstype'] = job.compressType;
  if (job.contentType) headers['content-type'] = job.contentType;
  const request = new $OpenApiUtil.OpenApiRequest({
    hostMap: { project: job.project },
    headers,
    body: encodeLogGroup(job.group),
  });
  const params = new $OpenApiUtil.Params({
    action: 'PutLogs',
    version: '2020-12-30',
    protocol: 'http',
    pathname: `/logstores/${job.logstore}/shards/lb`,
    method: 'POST',
    authType: 'AK',
    style: 'ROA',
    reqBodyType: 'binary',
    bodyType: 'none',
  });
  try {
    const resp = await client.execute(params, request, new $dara.RuntimeOptions({}));
    return { ok: true, requestId: resp.headers['x-log-requestid'] || '' };
  } catch (e) {
    // The gateway wraps the SLS envelope: code/message, data.statusCode, data.requestId.
    const inner = e && e.data && e.data.code ? e : (e && e.err) || e;
    const data = (inner && inner.data) || {};
    if (!data.statusCode) throw e;
    return {
      ok: false,
      status: data.statusCode,
      code: inner.code,
      requestId: data.requestId || '',
      message: inner.message || '',
    };
  }
}

async function viaLog(job) {
  const Client = require('@alicloud/log');
  const client = new Client({
    accessKeyId: job.accessKeyId,
    accessKeySecret: job.accessKeySecret,
    securityToken: job.securityToken || undefined,
    endpoint: `http://${job.endpoint}`,
  });
  const logs = job.group.logs.map((log) => {
    const out = { timestamp: log.time, content: Object.fromEntries(log.contents) };
    if (log.timeNs !== null && log.timeNs !== undefined) out.timestampNsPart = log.timeNs;
    return out;
  });
  const data = {
    logs,
    tags: job.group.tags.map(([k, v]) => ({ [k]: v })),
    topic: job.group.topic,
    source: job.group.source,
  };
  try {
    await client.postLogStoreLogs(job.project, job.logstore, data);
    return { ok: true, requestId: '' };
  } catch (e) {
    if (!e.code) throw e;
    return { ok: false, status: null, code: e.code, requestId: e.requestid || '', message: e.message };
  }
}

function viaAliyunSdk(job) {
  const ALY = require('aliyun-sdk');
  const sls = new ALY.SLS({
    accessKeyId: job.accessKeyId,
    secretAccessKey: job.accessKeySecret,
    securityToken: job.securityToken || '',
    endpoint: `http://${job.endpoint}`,
    apiVersion: '2015-06-01',
    maxRetries: 0,
    // populateURI() rebuilds the URL as {project}.{host} and drops the endpoint's port;
    // httpOptions go to http.request() verbatim, so the port is given there.
    httpOptions: { port: Number(job.endpoint.split(':')[1] || 80) },
  });
  const logGroup = {
    logs: job.group.logs.map((log) => ({
      time: log.time,
      contents: log.contents.map(([key, value]) => ({ key, value })),
    })),
    topic: job.group.topic,
    source: job.group.source,
  };
  return new Promise((resolve, reject) => {
    sls.putLogs({ projectName: job.project, logStoreName: job.logstore, logGroup }, (err, data) => {
      if (!err) {
        resolve({ ok: true, requestId: (data && data.request_id) || '' });
      } else if (err.errorCode) {
        resolve({
          ok: false,
          status: err.code,
          code: err.errorCode,
          requestId: err.request_id || '',
          message: err.errorMessage || '',
        });
      } else {
        reject(err);
      }
    });
  });
}

const CLIENTS = { gateway: viaGateway, log: viaLog, 'aliyun-sdk': viaAliyunSdk };

async function main(job) {
  const send = CLIENTS[job.client];
  if (!send) throw new Error(`unknown client ${job.client}`);
  return send(job);
}

runJob(main);
