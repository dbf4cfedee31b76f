// ali-oss (Node) against the ossgate emulator, V1 and V4, three addressing forms:
//   vhost     endpoint oss-cn-hangzhou.aliyuncs.com: Host = bucket.oss-cn-hangzhou.aliyuncs.com, path /key
//   sld-ip    endpoint http://127.0.0.1:PORT with sldEnable: path /bucket/key
//   sld-host  endpoint bucket.oss-cn-hangzhou.aliyuncs.com with sldEnable: bucket in Host AND path
// The *.aliyuncs.com names never reach DNS: a custom agent connects to the emulator.
// Run by tests/interop/test_node.py, which passes OSSGATE_ENDPOINT, OSSGATE_AK, OSSGATE_SK
// and OSSGATE_BUCKET.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const http = require('node:http');
const net = require('node:net');
const crypto = require('node:crypto');
const OSS = require('ali-oss');

const endpoint = new URL(process.env.OSSGATE_ENDPOINT);
const accessKeyId = process.env.OSSGATE_AK;
const accessKeySecret = process.env.OSSGATE_SK;
const bucket = process.env.OSSGATE_BUCKET;

/** An agent that sends every connection to the emulator, whatever the host name. */
class EmulatorAgent extends http.Agent {
  createConnection(options, callback) {
    return net.createConnection(
      { host: endpoint.hostname, port: Number(endpoint.port) },
      callback,
    );
  }
}

function client(addressing, v4, secret) {
  const options = {
    region: 'oss-cn-hangzhou',
    accessKeyId,
    accessKeySecret: secret || accessKeySecret,
    bucket,
    authorizationV4: v4,
    secure: false,
    timeout: 10000,
    agent: new EmulatorAgent({ keepAlive: false }),
  };
  if (addressing === 'vhost') {
    options.endpoint = 'http://oss-cn-hangzhou.aliyuncs.com';
  } else if (addressing === 'sld-ip') {
    options.endpoint = endpoint.origin;
    options.sldEnable = true;
  } else {
    options.endpoint = `http://${bucket}.oss-cn-hangzhou.aliyuncs.com`;
    options.sldEnable = true;
  }
  return new OSS(options);
}

// ali-oss validates tags itself with an ASCII-only pattern, so no non-ASCII tags here
// (the Python tests cover those).
const TAGS = {
  plain: 'value',
  punct: 'a+b-c=d.e_f:g/h',
  'with space': 'two words',
};

for (const addressing of ['vhost', 'sld-ip', 'sld-host']) {
  for (const v4 of [false, true]) {
    const name = `${addressing} ${v4 ? 'V4' : 'V1'}`;

    test(`${name}: put with tags and metadata, head, get, range, tagging, symlink, delete`, async () => {
      const c = client(addressing, v4);
      const key = `node/${addressing}-${v4 ? 'v4' : 'v1'} ${crypto.randomUUID()}/obj+1.txt`;
      const data = Buffer.from('hello from ali-oss\n'.repeat(50));
      const tagHeader = Object.entries({ a: '1', team: 'storage ops' })
        .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
        .join('&');
      const put = await c.put(key, data, {
        headers: { 'x-oss-tagging': tagHeader },
        meta: { color: 'Red' },
        mime: 'text/plain',
      });
      assert.equal(put.res.status, 200);
      const md5 = crypto.createHash('md5').update(data).digest('hex').toUpperCase();
      assert.equal(put.res.headers.etag, `"${md5}"`);

      const head = await c.head(key);
      assert.equal(head.status, 200);
      assert.equal(head.res.headers['x-oss-tagging-count'], '2');
      assert.equal(head.meta.color, 'Red');
      assert.equal(Number(head.res.headers['content-length']), data.length);

      const got = await c.get(key);
      assert.deepEqual(got.content, data);
      const part = await c.get(key, { headers: { Range: 'bytes=6-9' } });
      assert.equal(part.res.status, 206);
      assert.equal(part.content.toString(), 'from');

      await c.putObjectTagging(key, TAGS);
      const tags = await c.getObjectTagging(key);
      assert.deepEqual(tags.tag, TAGS);
      await c.deleteObjectTagging(key);
      assert.deepEqual((await c.getObjectTagging(key)).tag, {});

      const link = `${key}.link`;
      await c.putSymlink(link, key);
      const sym = await c.getSymlink(link);
      assert.equal(decodeURIComponent(sym.targetName), key);
      assert.deepEqual((await c.get(link)).content, data);

      await c.delete(key);
      await assert.rejects(c.get(key), (err) => err.status === 404 && err.code === 'NoSuchKey');
      await assert.rejects(c.get(link), (err) => err.status === 404 && err.code === 'SymlinkTargetNotExist');
    });

    test(`${name}: a wrong secret gets SignatureDoesNotMatch`, async () => {
      const c = client(addressing, v4, 'not-the-secret');
      await assert.rejects(
        c.put(`node/denied-${crypto.randomUUID()}`, Buffer.from('x')),
        (err) => err.status === 403 && err.code === 'SignatureDoesNotMatch',
      );
    });
  }
}
