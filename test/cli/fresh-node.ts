/** Fresh node processes for the V8 flag tests (v8-flags.test.ts, v8-young-after-idle.test.ts). */
import { execFile } from 'node:child_process';

/** How long one fresh node may take, unless its caller says otherwise. */
export const TIMEOUT_MS = 20_000;

/** Runs an ES module `script` in a fresh node with `nodeArgs`; resolves with its stdout. */
export function runFresh(script: string, nodeArgs: readonly string[] = [], timeoutMs = TIMEOUT_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    // NODE_OPTIONS cleared: the test runner's own settings must not decide the outcome.
    const env = { ...process.env, NODE_OPTIONS: '' };
    execFile(process.execPath, [...nodeArgs, '--input-type=module', '-e', script], { env, timeout: timeoutMs }, (err, stdout) => {
      if (err !== null) return reject(err);
      resolve(stdout);
    });
  });
}

/**
 * Script text: `turns` event-loop turns of `perTurn` short-lived objects each, at most
 * `inFlight` alive at a time, as a proxy's requests make them.
 */
export function requestLikeLoad(turns: number, perTurn: number, inFlight: number): string {
  return `
    const inFlight = [];
    for (let turn = 0; turn < ${turns}; turn++) {
      for (let i = 0; i < ${perTurn}; i++) {
        inFlight.push({ i, s: 'y' + i, a: [i, turn] });
        if (inFlight.length > ${inFlight}) inFlight.shift();
      }
      await new Promise((resolve) => setImmediate(resolve));
    }`;
}

