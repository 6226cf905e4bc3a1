import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Logger } from '../../src/core/log.js';

function capture() {
  const lines: string[] = [];
  return { lines, sink: { write: (s: string) => lines.push(s) } };
}

const now = () => new Date('2026-01-02T03:04:05.000Z');

describe('Logger', () => {
  it('writes JSON records with the fields of its children', () => {
    const { lines, sink } = capture();
    const log = new Logger({ format: 'json', sink, now }).child({ component: 'xds' });
    log.info('pushed', { proxies: 3 });
    assert.deepEqual(lines.map((l) => JSON.parse(l)), [{ time: '2026-01-02T03:04:05.000Z', level: 'info', msg: 'pushed', component: 'xds', proxies: 3 }]);
  });

  it('writes readable text lines, quoting values with spaces', () => {
    const { lines, sink } = capture();
    new Logger({ sink, now }).warn('config rejected', { file: 'my vs.yaml', errors: 2 });
    assert.deepEqual(lines, ['2026-01-02T03:04:05.000Z WARN  config rejected file="my vs.yaml" errors=2\n']);
  });

  it('drops records below its level and reports it through enabled()', () => {
    const { lines, sink } = capture();
    const log = new Logger({ level: 'warn', sink, now });
    log.info('hidden');
    log.debug('hidden');
    log.error('shown');
    assert.equal(lines.length, 1);
    assert.equal(log.enabled('info'), false);
    assert.equal(log.child({ a: 1 }).enabled('info'), false);
  });

  it('serialises errors with their code', () => {
    const { lines, sink } = capture();
    const err = Object.assign(new Error('boom'), { code: 'TRELLIS_X' });
    new Logger({ format: 'json', sink, now }).error('failed', { err });
    assert.deepEqual(JSON.parse(lines[0] as string).err, { code: 'TRELLIS_X', message: 'boom' });
  });
});
