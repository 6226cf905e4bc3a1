/**
 * Reading sockets into the shared read buffer (src/proxy/socket-reader.ts): what a reader
 * gets, what it must copy, bytes that arrive between two readers, and sockets that emit
 * 'data' (node:net's server, or a listener without the option) read the same way.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { describe, it, type TestContext } from 'node:test';
import { createListener, nativeAddon } from '../../src/proxy/listener/fast-accept.js';
import { isReadView, owned, readIntoSharedBuffer, readWith, stopReading } from '../../src/proxy/socket-reader.js';

const TIMEOUT = { timeout: 10_000 };

/** A server that answers each line `say X` with `X` (one write per line). */
async function sayServer(t: TestContext): Promise<number> {
  const server: Server = createServer((s) => {
    s.setEncoding('latin1');
    let buf = '';
    s.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith('say ')) s.write(line.slice(4));
      }
    });
    s.on('error', () => undefined);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  return (server.address() as AddressInfo).port;
}

/** The next chunk the socket's reader gets, and its copy made with owned() during the call. */
function nextRead(socket: Socket): Promise<{ view: Buffer; copy: Buffer; text: string }> {
  return new Promise((resolve) => {
    readWith(socket, (chunk) => resolve({ view: chunk, copy: owned(chunk), text: chunk.toString('latin1') }));
  });
}

function sharedBufferClient(port: number): Socket {
  return connect({ host: '127.0.0.1', port, onread: readIntoSharedBuffer() });
}

describe('socket reader', TIMEOUT, () => {
  it('passes views of one buffer that every such socket reads into; owned() copies survive the next read', async (t) => {
    const port = await sayServer(t);
    const a = sharedBufferClient(port);
    const b = sharedBufferClient(port);
    t.after(() => a.destroy());
    t.after(() => b.destroy());
    await Promise.all([once(a, 'connect'), once(b, 'connect')]);
    let read = nextRead(a);
    a.write('say first\n');
    const first = await read;
    read = nextRead(a);
    a.write('say SECOND\n');
    const second = await read;
    assert.equal(first.text, 'first');
    assert.equal(second.text, 'SECOND');
    assert.ok(isReadView(first.view) && isReadView(second.view));
    assert.equal(first.view.buffer, second.view.buffer, 'both reads landed in the same memory');
    // The first view now shows the second read's bytes: why a reader copies what it keeps.
    assert.equal(first.view.toString('latin1'), 'SECON');
    assert.equal(first.copy.toString('latin1'), 'first');
    assert.equal(isReadView(first.copy), false);
    // Another socket's read lands there too.
    read = nextRead(b);
    b.write('say other\n');
    const other = await read;
    assert.equal(other.view.buffer, first.view.buffer);
    assert.equal(second.view.toString('latin1'), 'otherD');
    assert.equal(second.copy.toString('latin1'), 'SECOND');
  });

  it('keeps bytes that arrive while no reader is set for the next reader', async (t) => {
    const port = await sayServer(t);
    const socket = sharedBufferClient(port);
    t.after(() => socket.destroy());
    await once(socket, 'connect');
    const read = nextRead(socket);
    socket.write('say one\n');
    assert.equal((await read).text, 'one');
    stopReading(socket);
    // Nobody reads: the bytes are put back and the socket pauses.
    socket.write('say two\n');
    await once(socket, 'pause');
    assert.equal(socket.readableLength, 3);
    const again = nextRead(socket);
    socket.resume();
    const r = await again;
    assert.equal(r.text, 'two');
    assert.equal(isReadView(r.view), false, 'a put-back chunk is a copy');
  });

  it("reads sockets that emit 'data' the same way, and owned() leaves their chunks as they are", async (t) => {
    const port = await sayServer(t);
    const socket = connect({ host: '127.0.0.1', port });
    t.after(() => socket.destroy());
    await once(socket, 'connect');
    const read = nextRead(socket);
    socket.write('say plain\n');
    const r = await read;
    assert.equal(r.text, 'plain');
    assert.equal(isReadView(r.view), false);
    assert.equal(r.copy, r.view);
  });

  for (const native of [true, false]) {
    it(`has accepted sockets read into the shared buffer on the ${native ? 'native' : 'node:net'} path only where it can`, async (t) => {
      if (native && nativeAddon() === null) {
        t.skip('native accept helper not built');
        return;
      }
      const got: Promise<{ text: string; view: boolean }> = new Promise((resolve, reject) => {
        createListener('127.0.0.1', 0, (s) => readWith(s, (chunk) => resolve({ text: chunk.toString('latin1'), view: isReadView(chunk) })), { native, sharedReadBuffer: true })
          .then((listener) => {
            t.after(() => listener.close());
            const c = connect({ host: '127.0.0.1', port: listener.port }, () => c.write('hello'));
            t.after(() => c.destroy());
          })
          .catch(reject);
      });
      const r = await got;
      assert.equal(r.text, 'hello');
      assert.equal(r.view, native, native ? 'native sockets read into the shared buffer' : "node:net's server sockets emit 'data'");
    });
  }
});
