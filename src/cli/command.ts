/** The shape of a CLI command: flags in, exit status out, output through `io` (testable). */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { TrellisError } from '../core/errors.js';
import { LOG_LEVELS, Logger, type LogFormat, type LogLevel } from '../core/log.js';

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
/** Every command's `-h`/`--help`. */
const HELP_FLAG = { help: { type: 'boolean', short: 'h', default: false } } as const;

/** Thrown by parseFlags for `-h`/`--help`: main prints the command's usage and exits 0. */
export class HelpRequested extends Error {
  constructor() {
    super('help requested');
  }
}

/**
 * The command's flags (and `-h`/`--help`, which every command takes: HelpRequested), or
 * TRELLIS_CLI_USAGE with the usage for anything else.
 */
export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(args: readonly string[], options: T, usage: string) {
  let parsed;
  try {
    parsed = parseArgs({ args: [...args], options: { ...options, ...HELP_FLAG }, allowPositionals: true, strict: true });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new TrellisError('TRELLIS_CLI_USAGE', `${message}\n\n${usage}`);
  }
  if ((parsed.values as { help?: boolean }).help === true) throw new HelpRequested();
  return parsed;
}

/** A port flag: 0..65535 (0 picks a free port); `fallback` when absent. */
export function portFlag(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new TrellisError('TRELLIS_CLI_USAGE', `--${name} must be a port number (got "${value}")`);
  return n;
}

/** The `--log-level` and `--log-format` flags every long-running command takes. */
export const LOG_FLAGS = {
  'log-level': { type: 'string', default: 'info' },
  'log-format': { type: 'string', default: 'text' },
} as const;

export const LOG_FLAGS_USAGE = `      --log-level LEVEL        debug|info|warn|error (default info)
      --log-format FORMAT      text|json (default text)`;

export function loggerFromFlags(values: { 'log-level'?: unknown; 'log-format'?: unknown }, io: CommandIO): Logger {
  const level = String(values['log-level'] ?? 'info');
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new TrellisError('TRELLIS_CLI_USAGE', `--log-level must be one of ${LOG_LEVELS.join(', ')}`);
  const format = String(values['log-format'] ?? 'text');
  if (format !== 'text' && format !== 'json') throw new TrellisError('TRELLIS_CLI_USAGE', '--log-format must be text or json');
  return new Logger({ level: level as LogLevel, format: format as LogFormat, sink: io.stderr });
}

/** Resolves with the name of the first SIGINT or SIGTERM. */
export function untilSignal(): Promise<'SIGINT' | 'SIGTERM'> {
  return new Promise((resolve) => {
    const on = (signal: 'SIGINT' | 'SIGTERM') => (): void => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(signal);
    };
    const onInt = on('SIGINT');
    const onTerm = on('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
}
