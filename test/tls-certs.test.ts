import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { test } from 'node:test';
import { TestCa } from './tls-certs.js';

test('a leaf certificate from the test CA verifies against it, and against no other CA', async (t) => {
  const ca = await TestCa.create();
  const other = await TestCa.create('Other CA');
  const leaf = await ca.issue({ dns: ['svc.example'], uri: ['spiffe://cluster.local/ns/default/sa/svc'] });
  const server = createServer({ cert: leaf.cert, key: leaf.key }, (s) => s.end('hi'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const port = (server.address() as { port: number }).port;

  const good = connect({ host: '127.0.0.1', port, servername: 'svc.example', ca: ca.cert });
  await once(good, 'secureConnect');
  const peer = (good as TLSSocket).getPeerCertificate();
  assert.equal(peer.subjectaltname, 'DNS:svc.example, URI:spiffe://cluster.local/ns/default/sa/svc');
  good.destroy();

  const bad = connect({ host: '127.0.0.1', port, servername: 'svc.example', ca: other.cert });
  const [err] = (await once(bad, 'error')) as [NodeJS.ErrnoException];
  assert.equal(err.code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
});
