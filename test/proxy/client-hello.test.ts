/**
 * The ClientHello inspector against hellos from a real TLS client (node:tls / OpenSSL),
 * and filter chain choice by port, server name and ALPN as Envoy chooses.
 */
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { describe, it } from 'node:test';
import { buildListener, chooseChain } from '../../src/proxy/config/listeners.js';
import { inspectClientHello } from '../../src/proxy/tls/client-hello.js';
import { TYPE_URLS } from '../../src/xds/type-urls.js';
import type { Listener__Output } from '../../src/xds/generated/envoy/config/listener/v3/Listener.js';

/** The first bytes a TLS client sends with these options (captured by a plain TCP server). */
function clientHello(options: { servername?: string; ALPNProtocols?: string[] }): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const server = createServer((s) => {
      let buf = Buffer.alloc(0);
      s.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        if (buf.length >= 5 && buf.length >= 5 + buf.readUInt16BE(3)) {
          s.destroy();
          server.close();
          resolve(buf);
        }
      });
    });
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      const c = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...options });
      c.on('error', () => undefined); // the "server" never answers the handshake
      c.on('close', () => undefined);
    });
    server.on('error', reject);
  });
}

describe('TLS ClientHello inspection', { timeout: 20_000 }, () => {
  it('reads SNI (lower-cased) and the ALPN list from a real hello', async () => {
    const hello = await clientHello({ servername: 'Api.Example.COM', ALPNProtocols: ['h2', 'http/1.1'] });
    const r = inspectClientHello(hello);
    assert.equal(r.kind, 'tls');
    assert.ok(r.kind === 'tls');
    assert.equal(r.hello.serverName, 'api.example.com');
    assert.deepEqual(r.hello.alpn, ['h2', 'http/1.1']);
  });

  it('reports no SNI and no ALPN when the client sends neither', async () => {
    const hello = await clientHello({ servername: '' });
    const r = inspectClientHello(hello);
    assert.ok(r.kind === 'tls');
    assert.equal(r.hello.serverName, undefined);
    assert.deepEqual(r.hello.alpn, []);
  });

  it('waits for the whole record, byte by byte', async () => {
    const hello = await clientHello({ servername: 'a.example.com' });
    for (let n = 0; n < hello.length; n++) assert.equal(inspectClientHello(hello.subarray(0, n)).kind, 'incomplete', `at ${n} bytes`);
    assert.equal(inspectClientHello(hello).kind, 'tls');
  });

  it('says not-tls at the first byte of plain HTTP, HTTP/2 and other protocols', () => {
    for (const s of ['GET / HTTP/1.1\r\n', 'PRI * HTTP/2.0\r\n', 'SSH-2.0-OpenSSH\r\n', '\x16\x02']) assert.equal(inspectClientHello(Buffer.from(s, 'latin1')).kind, 'not-tls', JSON.stringify(s));
  });

  it('survives truncated and corrupted hellos (no throw; tls without a name or not-tls)', async () => {
    const hello = await clientHello({ servername: 'b.example.com', ALPNProtocols: ['h2'] });
    let seed = 7;
    const rand = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    for (let i = 0; i < 3_000; i++) {
      const b = Buffer.from(hello);
      for (let k = 0; k < 1 + (rand() % 8); k++) b[5 + (rand() % (b.length - 5))] = rand() & 0xff;
      const r = inspectClientHello(b);
      assert.ok(['tls', 'not-tls', 'incomplete'].includes(r.kind));
    }
  });
});

function listener(chains: { port?: number; names?: string[]; alpn?: string[]; cluster: string }[]): Listener__Output {
  return {
    name: 'l',
    address: { socket_address: { address: '0.0.0.0', port_value: 443 } },
    traffic_direction: 'OUTBOUND',
    filter_chains: chains.map((c) => ({
      name: c.cluster,
      filter_chain_match: {
        destination_port: c.port === undefined ? null : { value: c.port },
        server_names: c.names ?? [],
        application_protocols: c.alpn ?? [],
      },
      filters: [{ name: 'tcp', typed_config: { '@type': TYPE_URLS.TCP_PROXY, stat_prefix: c.cluster, cluster: c.cluster } }],
    })),
    default_filter_chain: null,
  } as unknown as Listener__Output;
}

describe('filter chain choice', () => {
  const l = buildListener(listener([
    { names: ['*.example.com'], cluster: 'wild' },
    { names: ['*.api.example.com'], cluster: 'longer-wild' },
    { names: ['exact.example.com'], cluster: 'exact' },
    { names: ['h2.example.com'], alpn: ['h2'], cluster: 'h2-only' },
    { names: ['h2.example.com'], cluster: 'h2-any' },
    { port: 8443, cluster: 'port' },
  ]));
  const pick = (port: number, sni?: string, alpn?: string[]): string | undefined => {
    const c = chooseChain(l, port, sni, alpn);
    return c?.name;
  };

  it('prefers an exact server name over wildcards, and a longer wildcard over a shorter one', () => {
    assert.equal(pick(443, 'exact.example.com'), 'exact');
    assert.equal(pick(443, 'x.example.com'), 'wild');
    assert.equal(pick(443, 'v1.api.example.com'), 'longer-wild');
    assert.equal(pick(443, 'example.com'), undefined, 'a wildcard does not match the bare domain');
    assert.equal(pick(443, undefined), undefined, 'no SNI, no name-matched chain');
  });

  it('uses ALPN after the server name: any offered protocol matches', () => {
    assert.equal(pick(443, 'h2.example.com', ['http/1.1', 'h2']), 'h2-only');
    assert.equal(pick(443, 'h2.example.com', ['http/1.1']), 'h2-any');
    assert.equal(pick(443, 'h2.example.com'), 'h2-any');
  });

  it('decides by destination port before anything else', () => {
    assert.equal(pick(8443, 'exact.example.com'), 'port');
  });
});
