/**
 * The frame every command runs in: read configuration, connect, do the work,
 * print, close, and turn failures into a message and a non-zero exit code.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { StewardError } from '../errors.js';
import type { Config } from '../config.js';
import { loadClientConfig, type ClientConfig } from '../client-config.js';
import type { Client } from './client.js';
import { reportError, type OutputOptions } from './output.js';

export interface GlobalOptions {
  readonly json?: boolean;
  readonly home?: string;
  readonly url?: string;
  readonly token?: string;
}

export interface CommandContext {
  readonly config: ClientConfig;
  readonly out: OutputOptions;
  readonly client: Client;
}

export interface StandaloneContext {
  /** Where commands go (checked already). */
  readonly config: ClientConfig;
  /** The whole configuration, for commands that open the workspace themselves (loads zod). */
  full(): Promise<Config>;
  readonly out: OutputOptions;
}

/**
 * Where the command goes, from flags and the environment. The rest of the
 * configuration is read only by the commands that open the workspace, so a
 * command a server answers loads neither zod nor the server stack.
 */
export function configFrom(cmd: Command, options: ClientOptions = {}): StandaloneContext {
  const g = cmd.optsWithGlobals<GlobalOptions>();
  const config = loadClientConfig(process.env, {
    ...(g.home === undefined ? {} : { home: g.home }),
    ...(g.url === undefined || options.urlIsArgument === true ? {} : { url: g.url }),
    ...(g.token === undefined ? {} : { token: g.token }),
  });
  const full = async (): Promise<Config> => (await import('../config.js')).loadConfig(process.env, config);
  return { config, full, out: { json: g.json === true } };
}

export interface ClientOptions {
  /**
   * The command's own `--url` is an argument (`steward share trust … --url`
   * names the other workspace), not where to connect: commander gives both
   * the global option's name, so the command reads it and the connection
   * comes from STEWARD_URL or the workspace.
   */
  readonly urlIsArgument?: boolean;
  /** The command only asks `POST /v1/authorize`, which the world cache may answer (client.ts). */
  readonly cachedAuthorize?: boolean;
}

/** Runs `work` with a connected client; sets process.exitCode on failure. */
export async function withClient(cmd: Command, work: (ctx: CommandContext) => Promise<void>, options: ClientOptions = {}): Promise<void> {
  let out: OutputOptions = { json: cmd.optsWithGlobals<GlobalOptions>().json === true };
  let client: Client | undefined;
  try {
    const cfg = configFrom(cmd, options);
    out = cfg.out;
    const { connect } = await import('./client.js');
    client = await connect(cfg.config, options.cachedAuthorize === true ? { cachedAuthorize: true } : {});
    await work({ config: cfg.config, out, client });
  } catch (e) {
    process.exitCode = reportError(e, out);
  } finally {
    await client?.close().catch(() => {});
  }
}

/** Runs `work` without connecting (commands that only read local files, or manage the connection themselves). */
export async function standalone(cmd: Command, work: (ctx: StandaloneContext) => Promise<void>): Promise<void> {
  let out: OutputOptions = { json: cmd.optsWithGlobals<GlobalOptions>().json === true };
  try {
    const cfg = configFrom(cmd);
    out = cfg.out;
    await work(cfg);
  } catch (e) {
    process.exitCode = reportError(e, out);
  }
}

/** `a=1,b=2` style list options. */
export function list(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map((s) => s.trim()).filter((s) => s.length > 0)];
}

export const enc = encodeURIComponent;

/** The text of `file`, or of stdin when `file` is `-`, with a clear error when it cannot be read. */
export async function readInput(file: string): Promise<string> {
  if (file === '-') {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }
  try {
    return await readFile(file, 'utf8');
  } catch (e) {
    throw new StewardError('STEWARD_E_VALIDATION', `cannot read \`${file}\`: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`, { cause: e });
  }
}
