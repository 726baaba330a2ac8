/**
 * Human output is aligned tables on stdout; `--json` prints exactly one JSON
 * document; errors go to stderr with their stable code, and the process exits
 * non-zero.
 */
import { createRequire } from 'node:module';
import type CliProgress from 'cli-progress';
import { isStewardError } from '../errors.js';

export interface OutputOptions {
  readonly json: boolean;
}

export type Cell = string | number | boolean | null | undefined;

export function table(rows: readonly Record<string, Cell>[], columns: readonly string[]): string {
  if (rows.length === 0) return '(none)';
  const text = (v: Cell): string => (v === null || v === undefined ? '' : String(v));
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => text(r[c]).length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(columns.map((c) => c.toUpperCase())), ...rows.map((r) => line(columns.map((c) => text(r[c]))))].join('\n');
}

export function emit(opts: OutputOptions, value: unknown, human: () => string): void {
  process.stdout.write(opts.json ? `${JSON.stringify(value, null, 2)}\n` : `${human()}\n`);
}

export function reportError(e: unknown, opts: OutputOptions): number {
  if (isStewardError(e)) {
    if (opts.json) {
      process.stderr.write(`${JSON.stringify({ error: e.toJSON() })}\n`);
    } else {
      process.stderr.write(`error: ${e.message} [${e.code}]\n`);
      for (const d of e.details.slice(0, 50)) process.stderr.write(`  - ${d.path === undefined ? '' : `${d.path}: `}${d.message}\n`);
    }
    return e.status >= 500 ? 2 : 1;
  }
  process.stderr.write(`error: ${(e as Error)?.message ?? String(e)}\n`);
  return 2;
}

/** A progress bar on stderr when it is a terminal; silent otherwise, so scripts and logs stay clean. */
export function progress(label: string, total: number): { update(done: number): void; stop(): void } {
  if (!process.stderr.isTTY || total <= 1) return { update: () => {}, stop: () => {} };
  // Loaded only when a bar is drawn: most commands never draw one, and each module costs start-up time.
  const cliProgress = createRequire(import.meta.url)('cli-progress') as typeof CliProgress;
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {value}/{total} {percentage}% eta {eta}s`, stream: process.stderr, hideCursor: true, clearOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  return { update: (done) => bar.update(done), stop: () => bar.stop() };
}
