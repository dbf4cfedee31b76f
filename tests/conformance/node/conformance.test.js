// The client conformance matrix through @grpc/grpc-js (the client Node services use), started
// by tests/conformance/test_node_matrix.py with the world it set up:
//   CONFORMANCE_GATEWAYS  JSON {name: "127.0.0.1:port"}
//   CONFORMANCE_BUCKET    the bucket the scenarios use
//   CONFORMANCE_UPLOADS   base URL answering GET /open-uploads?key=K with {"count": n}
//   CONFORMANCE_RESULTS   file this run writes {cell id: {ok, error}} to
// The rules are those of tests/conformance/matrix.py, described in tests/conformance/README.md.
'use strict';

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const HERE = path.resolve(__dirname, '..');
const SPEC = JSON.parse(fs.readFileSync(path.join(HERE, 'scenarios.json'), 'utf8'));
const GATEWAYS = JSON.parse(process.env.CONFORMANCE_GATEWAYS);
const BUCKET = process.env.CONFORMANCE_BUCKET;
const UPLOADS = process.env.CONFORMANCE_UPLOADS;
const RESULTS = process.env.CONFORMANCE_RESULTS;
const MAX_MESSAGE_BYTES = 32 * 1024 * 1024;
const UPLOADS_WAIT_MS = 20000;
// Response metadata that is transport, not chosen by the gateway.
const TRANSPORT_METADATA = new Set(SPEC.transport_metadata);
const codeName = (code) => grpc.status[code] || `code ${code}`;
// Response objects as proto3 JSON has them: camelCase names, 64-bit integers and enums as
// strings, bytes as base64, unset fields left out.
const AS_JSON = { longs: String, enums: String, bytes: String, defaults: false, oneofs: true };

const packageDefinition = protoLoader.loadSync('ossgate/v1/ossgate.proto', {
  includeDirs: [path.join(HERE, '..', '..', 'proto')],
  keepCase: false,
  ...AS_JSON,
});
const ObjectService = grpc.loadPackageDefinition(packageDefinition).ossgate.v1.ObjectService;
const METHODS = ObjectService.service;

// google.rpc.Status and its details (tests/conformance/proto, from googleapis).
const rpcRoot = new protobuf.Root();
rpcRoot.resolvePath = (origin, target) =>
  target.startsWith('google/protobuf/') ? target : path.join(HERE, 'proto', target);
rpcRoot.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto']);
const Status = rpcRoot.lookupType('google.rpc.Status');

// Channels of one cell: a new cell gets new channels, because grpc-js stops compressing on a
// channel whose server did not list gzip in grpc-accept-encoding, and every gzip cell must
// send compressed requests from its first call on.
class Clients {
  constructor() {
    this.byKey = new Map();
  }

  get(address, gzip) {
    const key = `${address} ${gzip}`;
    if (!this.byKey.has(key)) {
      const options = {
        'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
        'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
      };
      if (gzip) options['grpc.default_compression_algorithm'] = grpc.compressionAlgorithms.gzip;
      this.byKey.set(key, new ObjectService(address, grpc.credentials.createInsecure(), options));
    }
    return this.byKey.get(key);
  }

  close() {
    for (const stub of this.byKey.values()) stub.close();
  }
}

function cells() {
  const gzipModes = SPEC.stacks.node.gzip ? [false, true] : [false];
  const out = [];
  for (const scenario of SPEC.scenarios) {
    for (const deadline of [false, true]) {
      for (const gzip of gzipModes) {
        const id = ['node', deadline ? 'deadline' : 'nodeadline', gzip ? 'gzip' : 'plain', scenario.name].join('-');
        out.push({ id, deadline, gzip, scenario });
      }
    }
  }
  return out;
}

function substitute(value, variables) {
  if (typeof value === 'string') return value.replace(/\$\{(\w+)\}/g, (_, name) => variables[name]);
  if (Array.isArray(value)) return value.map((v) => substitute(v, variables));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, variables)]));
  }
  return value;
}

// The generated payload (matrix.py generated_chunks): message k is a block of SHA-256 digests
// rotated left by (k * 7919) mod chunk.
const chunkCache = new Map();
function generatedChunks({ size, chunk, seed }) {
  const key = `${size}/${chunk}/${seed}`;
  if (!chunkCache.has(key)) {
    const digests = [];
    for (let j = 0; digests.length * 32 < chunk; j++) {
      digests.push(crypto.createHash('sha256').update(`${seed}:${j}`).digest());
    }
    const block = Buffer.concat(digests).subarray(0, chunk);
    const chunks = [];
    for (let k = 0, offset = 0; offset < size; k++, offset += chunk) {
      const r = (k * 7919) % chunk;
      chunks.push(Buffer.concat([block.subarray(r), block.subarray(0, r)]).subarray(0, size - offset));
    }
    chunkCache.clear();
    chunkCache.set(key, chunks);
  }
  return chunkCache.get(key);
}

function writeMessages(generated, count) {
  const chunks = generatedChunks(generated).slice(0, count);
  const total = generatedChunks(generated).length;
  return chunks.map((data, k) => ({
    ...(k === 0 ? { spec: generated.spec } : {}),
    writeOffset: String(k * generated.chunk),
    data,
    ...(k + 1 === total ? { finishWrite: true } : {}),
  }));
}

function transportFree(metadata) {
  const out = {};
  for (const [key, values] of Object.entries(metadata ? metadata.getMap() : {})) {
    if (!TRANSPORT_METADATA.has(key.toLowerCase())) out[key.toLowerCase()] = values;
  }
  return out;
}

function canonicalDetail(any) {
  const name = any.type_url.split('/').pop();
  let type;
  try {
    type = rpcRoot.lookupType(name);
  } catch {
    return { '@type': name, '@unknown': Buffer.from(any.value).toString('base64') };
  }
  const message = type.decode(any.value);
  if (name === 'google.rpc.RetryInfo') {
    const delay = message.retryDelay || {};
    return { '@type': 'RetryInfo', retryDelayMs: Number(delay.seconds || 0) * 1000 + (delay.nanos || 0) / 1e6 };
  }
  return { '@type': name.replace(/^google\.rpc\./, ''), ...type.toObject(message, AS_JSON) };
}

function failure(err) {
  const seen = {
    code: codeName(err.code),
    message: err.details || '',
    details: [],
    trailers: transportFree(err.metadata),
  };
  const raw = err.metadata && err.metadata.get('grpc-status-details-bin')[0];
  if (raw) {
    const status = Status.decode(raw);
    seen.details = status.details.map((d) => canonicalDetail({ type_url: d.type_url || d.typeUrl, value: d.value }));
    seen.statusProto = [codeName(status.code), status.message];
  }
  return seen;
}

// One call; resolves with the observation (matrix.py Observation, as an object).
function invoke(clients, call) {
  const method = METHODS[call.rpc];
  const stub = clients.get(call.address, call.gzip);
  const metadata = new grpc.Metadata();
  for (const [key, value] of call.metadata) metadata.add(key, value);
  const options = call.deadlineMs == null ? {} : { deadline: Date.now() + call.deadlineMs };
  const name = method.originalName;
  return new Promise((resolve, reject) => {
    // A trailers-only answer (every error before a response) has no separate headers.
    let headers = {};
    const done = (err, response, status) => {
      if (err) {
        resolve({ ...failure(err), headers });
      } else {
        resolve({ code: 'OK', message: '', details: [], response, messages: [], headers, trailers: transportFree(status.metadata) });
      }
    };
    if (method.responseStream) {
      const messages = [];
      const stream = stub[name](call.request, metadata, options);
      stream.on('metadata', (md) => { headers = transportFree(md); });
      stream.on('data', (m) => messages.push(m));
      stream.on('error', (err) => done(err));
      stream.on('status', (status) => {
        if (status.code === grpc.status.OK) {
          resolve({ code: 'OK', message: '', details: [], messages, headers, trailers: transportFree(status.metadata) });
        }
      });
      return;
    }
    let status = null;
    const callback = (err, response) => {
      const finish = () => done(err, response, status);
      // The status (with the trailers) follows the callback.
      if (err || status) finish(); else setImmediate(finish);
    };
    const unary = method.requestStream
      ? stub[name](metadata, options, callback)
      : stub[name](call.request, metadata, options, callback);
    unary.on('metadata', (md) => { headers = transportFree(md); });
    unary.on('status', (s) => { status = s; });
    if (!method.requestStream) return;
    (async () => {
      for (const message of call.messages) {
        if (!unary.write(message)) await new Promise((r) => unary.once('drain', r));
      }
      if (!call.cancelWhen) {
        unary.end();
        return;
      }
      await call.cancelWhen();
      unary.cancel();
    })().catch(reject);
  });
}

async function openUploads(key) {
  const response = await fetch(`${UPLOADS}/open-uploads?key=${encodeURIComponent(key)}`);
  assert.equal(response.status, 200);
  return (await response.json()).count;
}

async function awaitOpenUploads(key, count, atLeast = false) {
  const deadline = Date.now() + UPLOADS_WAIT_MS;
  for (;;) {
    const n = await openUploads(key);
    if (n === count || (atLeast && n >= count)) return;
    assert.ok(Date.now() < deadline, `${key} has ${n} open multipart uploads after ${UPLOADS_WAIT_MS} ms, expected ${count}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function matches(expected, actual) {
  if (expected && typeof expected === 'object' && !Array.isArray(expected)) {
    const keys = Object.keys(expected);
    if (keys.length === 1 && keys[0] === 'regex') {
      return typeof actual === 'string' && new RegExp(expected.regex).test(actual);
    }
    if (keys.length === 1 && keys[0] === 'one_of') return expected.one_of.some((e) => matches(e, actual));
    if (!actual || typeof actual !== 'object' || Array.isArray(actual)) return false;
    const actualKeys = Object.keys(actual);
    return actualKeys.length === keys.length && keys.every((k) => k in actual && matches(expected[k], actual[k]));
  }
  if (Array.isArray(expected)) {
    return Array.isArray(actual) && actual.length === expected.length && expected.every((e, i) => matches(e, actual[i]));
  }
  return expected === actual;
}

function atPath(message, dotted) {
  let value = message;
  for (const part of dotted.split('.')) {
    if (!value || typeof value !== 'object' || !(part in value)) return '<absent>';
    value = value[part];
  }
  return value;
}

function expectedContent(content) {
  if ('base64' in content) return Buffer.from(content.base64, 'base64');
  return Buffer.concat(generatedChunks(content.generated));
}

const sha256 = (buffer) => crypto.createHash('sha256').update(buffer).digest('hex');

function check(expect, seen, what) {
  const got = `${what}: got ${seen.code} ${JSON.stringify(seen.message)} details=${JSON.stringify(seen.details)}`;
  assert.ok(seen.code === expect.code, `${got}; expected ${expect.code}`);
  if ('message' in expect) assert.ok(matches(expect.message, seen.message), `${got}; expected message ${JSON.stringify(expect.message)}`);
  if (!['OK', 'CANCELLED'].includes(seen.code) || 'details' in expect) {
    assert.ok(matches(expect.details || [], seen.details), `${got}; expected details ${JSON.stringify(expect.details || [])}`);
  }
  if (seen.statusProto) {
    assert.deepEqual(seen.statusProto, [seen.code, seen.message], `${what}: grpc-status-details-bin disagrees with the status`);
  }
  for (const [dotted, value] of Object.entries(expect.response || {})) {
    const actual = atPath(seen.response || {}, dotted);
    assert.ok(matches(value, actual), `${what}: response ${dotted} = ${JSON.stringify(actual)}, expected ${JSON.stringify(value)}`);
  }
  for (const [dotted, value] of Object.entries(expect.first_message || {})) {
    const actual = atPath((seen.messages || [])[0] || {}, dotted);
    assert.ok(matches(value, actual), `${what}: first message ${dotted} = ${JSON.stringify(actual)}, expected ${JSON.stringify(value)}`);
  }
  if ('content' in expect) {
    const content = Buffer.concat((seen.messages || []).map((m) => Buffer.from(m.data || '', 'base64')));
    const want = expectedContent(expect.content);
    assert.ok(sha256(content) === sha256(want), `${what}: read ${content.length} bytes that differ from the ${want.length} written`);
  }
  for (const part of ['headers', 'trailers']) {
    if (part in expect) {
      assert.ok(seen[part], `${what}: this client shows no response ${part}`);
      const actual = Object.fromEntries(Object.entries(seen[part]).map(([k, v]) => [k, v.toString()]));
      assert.ok(matches(expect[part], actual), `${what}: response ${part} ${JSON.stringify(actual)}, expected ${JSON.stringify(expect[part])}`);
    }
  }
}

async function runScenario(cell, clients) {
  const { scenario } = cell;
  const variables = { bucket: BUCKET, prefix: `conformance/${cell.id}/`, cell: cell.id };
  const deadlineMs = cell.deadline ? (scenario.deadline_ms ?? SPEC.deadline_ms) : null;
  for (const [index, raw] of scenario.steps.entries()) {
    const step = substitute(raw, variables);
    const what = `${cell.id} step ${index + 1}`;
    if (step.open_uploads) {
      await awaitOpenUploads(step.open_uploads.key, step.open_uploads.count);
      continue;
    }
    const tokenName = 'token' in step ? step.token : 'writer';
    const metadata = tokenName ? [['authorization', `Bearer ${SPEC.tokens[tokenName]}`]] : [];
    for (const [key, value] of Object.entries(step.metadata || {})) {
      metadata.push([key, key.endsWith('-bin') ? Buffer.from(value, 'base64') : value]);
    }
    const call = {
      address: GATEWAYS[step.gateway || scenario.gateway || 'main'],
      rpc: step.rpc,
      request: step.request,
      messages: step.generated ? writeMessages(step.generated, step.cancel_after_chunks) : step.messages,
      metadata,
      deadlineMs,
      gzip: cell.gzip,
    };
    if ('cancel_after_chunks' in step) {
      // Cancel once the gateway has begun the multipart upload, so the abort is tested.
      call.cancelWhen = () => awaitOpenUploads(step.generated.spec.key, 1, true);
    }
    const seen = await invoke(clients, call);
    const expect = step.expect || (cell.deadline ? step.expect_with_deadline : step.expect_without_deadline);
    check(expect, seen, what);
  }
}

const results = {};
for (const cell of cells()) {
  test(cell.id, async () => {
    const clients = new Clients();
    try {
      await runScenario(cell, clients);
      results[cell.id] = { ok: true };
    } catch (err) {
      results[cell.id] = { ok: false, error: String(err.message || err) };
      throw err;
    } finally {
      clients.close();
    }
  });
}

after(() => {
  if (RESULTS) fs.writeFileSync(RESULTS, JSON.stringify(results, null, 1));
});
