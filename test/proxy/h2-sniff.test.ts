/** Telling HTTP/2 (prior knowledge) from HTTP/1.1 by a connection's first bytes. */
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { H2_PREFACE, sniffConnection, type SniffHandlers, sniffPreface } from '../../src/proxy/http/h2/h2-sniff.js';

describe('sniffPreface', () => {
  it('says h2 for the whole preface, h1 at the first differing byte, and waits in between', () => {
    assert.equal(sniffPreface(Buffer.concat([H2_PREFACE, Buffer.from([0, 0, 0, 4])])), 'h2');
    assert.equal(sniffPreface(H2_PREFACE), 'h2');
    assert.equal(sniffPreface(Buffer.from('GET / HTTP/1.1\r\n')), 'h1');
    assert.equal(sniffPreface(Buffer.from('PRI * HTTP/1.1\r\n\r\n')), 'h1', 'differs at the version');
    assert.equal(sniffPreface(Buffer.from('POST / HTTP/1.1')), 'h1', 'differs at the second byte');
    assert.equal(sniffPreface(Buffer.from('PRI * HT')), undefined);
    assert.equal(sniffPreface(Buffer.alloc(0)), undefined);
  });
});

interface Sniffed {
  readonly kind: 'h1' | 'h2';
  readonly data: string;
}

describe('sniffConnection', { timeout: 10_000 }, () => {
  const connections = new Set<Socket>();
  const results: ((s: Sniffed) => void)[] = [];
  const accepts: ((s: Socket) => void)[] = [];
  const onTaken = (kind: 'h1' | 'h2') => (socket: Socket, first?: Buffer): void => {
    // The engine's view: everything from the first byte — for HTTP/2 still on the socket
    // (node:http2 reads its buffer), for HTTP/1.1 the sniffed bytes handed over first.
    let data = '';
    const take = (c: Buffer): void => {
      data += c.toString('latin1');
      if (data.endsWith('END')) results.shift()?.({ kind, data });
    };
    socket.on('close', () => connections.delete(socket));
    socket.on('data', take);
    if (kind === 'h1') assert.ok(first !== undefined && first.length > 0, 'the sniffed bytes come with the socket');
    if (first !== undefined) take(first);
    socket.resume();
  };
  const handlers: SniffHandlers = { connections, h1: onTaken('h1'), h2: onTaken('h2') };
  let server: Server;
  let port = 0;

  const ready = new Promise<void>((resolve) => {
    server = createServer((s) => {
      sniffConnection(s, handlers);
      accepts.shift()?.(s);
    });
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      resolve();
    });
  });

  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  /** Sends `pieces` one write at a time, each after the previous one was flushed. */
  async function exchange(pieces: readonly string[]): Promise<Sniffed> {
    await ready;
    const got = new Promise<Sniffed>((resolve) => results.push(resolve));
    const c = connect(port, '127.0.0.1');
    c.setNoDelay(true);
    for (const p of pieces) await new Promise<void>((resolve) => c.write(p, 'latin1', () => resolve()));
    const r = await got;
    c.destroy();
    return r;
  }

  it('hands an HTTP/2 connection over with the preface still to be read, even when it arrives in pieces', async () => {
    const preface = H2_PREFACE.toString('latin1');
    const r = await exchange([preface.slice(0, 3), preface.slice(3, 17), preface.slice(17), 'frames END']);
    assert.equal(r.kind, 'h2');
    assert.equal(r.data, `${preface}frames END`);
  });

  it('hands an HTTP/1.1 connection over with the bytes read so far, then the rest from the socket', async () => {
    const r = await exchange(['GET / HTTP/1.1\r\nHost: a\r\n', '\r\nEND']);
    assert.equal(r.kind, 'h1');
    assert.equal(r.data, 'GET / HTTP/1.1\r\nHost: a\r\n\r\nEND');
  });

  it('decides on a short first read that already differs (PR... then not the preface)', async () => {
    const r = await exchange(['PR', 'OPFIND / HTTP/1.1\r\nEND']);
    assert.equal(r.kind, 'h1');
    assert.equal(r.data, 'PROPFIND / HTTP/1.1\r\nEND');
  });

  it('forgets a connection that closes before its protocol is known', async () => {
    await ready;
    const accepted = new Promise<Socket>((resolve) => accepts.push(resolve));
    const c = connect(port, '127.0.0.1', () => c.end('PRI'));
    const s = await accepted;
    assert.ok(connections.has(s), 'tracked while undecided');
    await new Promise((resolve) => s.once('close', resolve));
    assert.equal(connections.has(s), false);
  });
});
