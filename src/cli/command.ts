/** The shape of a CLI command: flags in, exit status out, output through `io` (testable). */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { TrellisError } from '../core/errors.js';

export interface CommandIO {
  readonly stdout: { write(s: string): unknown };
  readonly stderr: { write(s: string): unknown };
  readonly cwd: string;
}

export interface Command {
  readonly summary: string;
  readonly usage: string;
  run(args: readonly string[], io: CommandIO): Promise<number>;
}

/** `node:util` parseArgs, with its errors turned into TRELLIS_CLI_USAGE. */
export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(args: readonly string[], options: T, usage: string) {
  try {
    return parseArgs({ args: [...args], options, allowPositionals: true, strict: true });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new TrellisError('TRELLIS_CLI_USAGE', `${message}\n\n${usage}`);
  }
}
