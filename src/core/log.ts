/**
 * A small structured logger. One line per record, as JSON (for machines and log
 * collectors) or as text (for a terminal). Child loggers add fixed fields, such as the
 * component. Callers on a hot path check `enabled(level)` before building fields.
 */
import { isoTime } from './iso-time.js';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFormat = 'json' | 'text';
export type LogFields = Readonly<Record<string, unknown>>;

const RANK: Readonly<Record<LogLevel, number>> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 };

export interface LogSink {
  write(line: string): unknown;
}

export interface LoggerOptions {
  readonly level?: LogLevel;
  readonly format?: LogFormat;
  readonly sink?: LogSink;
  /** Injected clock, for tests. */
  readonly now?: () => Date;
}

export class Logger {
  readonly #level: number;
  readonly #format: LogFormat;
  readonly #sink: LogSink;
  readonly #now: () => Date;
  readonly #fields: LogFields;

  constructor(options: LoggerOptions = {}, fields: LogFields = {}) {
    this.#level = RANK[options.level ?? 'info'];
    this.#format = options.format ?? 'text';
    this.#sink = options.sink ?? process.stderr;
    this.#now = options.now ?? (() => new Date());
    this.#fields = fields;
  }

  /** A logger that adds `fields` to every record. */
  child(fields: LogFields): Logger {
    const options: LoggerOptions = { level: levelName(this.#level), format: this.#format, sink: this.#sink, now: this.#now };
    return new Logger(options, { ...this.#fields, ...fields });
  }

  enabled(level: LogLevel): boolean {
    return RANK[level] >= this.#level;
  }

  debug(msg: string, fields?: LogFields): void {
    this.#log('debug', msg, fields);
  }

  info(msg: string, fields?: LogFields): void {
    this.#log('info', msg, fields);
  }

  warn(msg: string, fields?: LogFields): void {
    this.#log('warn', msg, fields);
  }

  error(msg: string, fields?: LogFields): void {
    this.#log('error', msg, fields);
  }

  #log(level: LogLevel, msg: string, fields: LogFields | undefined): void {
    if (!this.enabled(level)) return;
    const all = fields === undefined ? this.#fields : { ...this.#fields, ...fields };
    const time = isoTime(this.#now().getTime());
    this.#sink.write(this.#format === 'json' ? jsonLine(time, level, msg, all) : textLine(time, level, msg, all));
  }
}

function levelName(rank: number): LogLevel {
  return LOG_LEVELS.find((l) => RANK[l] === rank) ?? 'info';
}

function jsonLine(time: string, level: LogLevel, msg: string, fields: LogFields): string {
  return JSON.stringify({ time, level, msg, ...fields }, errorReplacer) + '\n';
}

function textLine(time: string, level: LogLevel, msg: string, fields: LogFields): string {
  let line = `${time} ${level.toUpperCase().padEnd(5)} ${msg}`;
  for (const [key, value] of Object.entries(fields)) line += ` ${key}=${formatValue(value)}`;
  return line + '\n';
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return /[\s"=]/.test(value) || value === '' ? JSON.stringify(value) : value;
  if (value instanceof Error) return JSON.stringify(value.message);
  return JSON.stringify(value, errorReplacer) ?? String(value);
}

function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return code === undefined ? { message: value.message } : { code, message: value.message };
  }
  return value;
}
