/**
 * Connecting to a warehouse. Credentials are a reference (an environment
 * variable or a secret file), resolved at connect time and never stored, logged
 * or echoed: errors name the target as `user@host:port/db` and any text that
 * contains the password is scrubbed. An unreachable warehouse is retried with
 * exponential backoff before a clear error.
 */
import { readFile } from 'node:fs/promises';
import type pg from 'pg';
import { StewardError } from '../errors.js';

export type CredentialRef = { readonly kind: 'env'; readonly name: string } | { readonly kind: 'file'; readonly path: string };

export interface RetryOptions {
  /** Attempts in all (default 4). */
  readonly attempts?: number;
  /** First delay; doubled after each failure (default 250 ms). */
  readonly baseDelayMs?: number;
  readonly connectTimeoutMs?: number;
  readonly onRetry?: (attempt: number, delayMs: number, message: string) => void;
}

export function describeCredentials(ref: CredentialRef): string {
  return ref.kind === 'env' ? `environment variable \`${ref.name}\`` : `secret file \`${ref.path}\``;
}

/** Which process reads the credentials: the one running the sync, which for `auto` targets and remote CLIs is the server. */
export function readerOfCredentials(): string {
  return `the Steward process that runs the sync (pid ${process.pid})`;
}

/**
 * Reads the connection URL the reference points at, in this process. A
 * variable or file this process cannot see is a 422 naming the process, so a
 * CLI talking to a server shows it (a variable exported in the CLI's shell
 * does not reach the server).
 */
export async function resolveCredentials(ref: CredentialRef, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  let url: string | undefined;
  if (ref.kind === 'env') {
    url = env[ref.name];
  } else {
    try {
      url = (await readFile(ref.path, 'utf8')).trim();
    } catch {
      throw new StewardError('STEWARD_E_SOURCE', `cannot read the warehouse ${describeCredentials(ref)} in ${readerOfCredentials()}`);
    }
  }
  if (url === undefined || url.trim() === '') throw new StewardError('STEWARD_E_SOURCE', `the warehouse ${describeCredentials(ref)} is not set in ${readerOfCredentials()}`);
  return url.trim();
}

function scrub(text: string, secret: string | undefined): string {
  return secret === undefined || secret === '' ? text : text.replaceAll(secret, '***');
}

/**
 * `user@host:port/db` of a connection URL, and its password for scrubbing.
 * (Not the store's parser: that module loads the embedded database, which a
 * sync process has no use for.)
 */
export function describeUrl(url: string): { where: string; password: string | undefined } {
  let u: URL;
  try {
    u = new URL(url.replace(/^(postgres(?:ql)?:\/\/[^/?#]*@)(?=[/?#]|$)/, '$1localhost'));
  } catch {
    throw new StewardError('STEWARD_E_CONFIG', 'the warehouse connection is not a valid url (expected `postgres://user:password@host:port/database`)');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new StewardError('STEWARD_E_CONFIG', 'the warehouse connection must be a `postgres://` url');
  const user = decodeURIComponent(u.username) || 'postgres';
  const host = u.searchParams.get('host') ?? (decodeURIComponent(u.hostname) || 'localhost');
  const database = decodeURIComponent(u.pathname.replace(/^\//, '')) || user;
  return { where: `${user}@${host}:${u.port === '' ? 5432 : Number(u.port)}/${database}`, password: u.password === '' ? undefined : decodeURIComponent(u.password) };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** An open connection plus a safe description of where it goes. */
export interface WarehouseConnection {
  readonly client: pg.Client;
  /** `user@host:port/db`: safe for messages. */
  readonly where: string;
  /** Turns any error into one that can be shown (password scrubbed). */
  explain(e: unknown): string;
  close(): Promise<void>;
}

/** Connects with retries; every failure message is scrubbed of the password. */
export async function connectWarehouse(targetName: string, url: string, retry: RetryOptions = {}): Promise<WarehouseConnection> {
  const parsed = describeUrl(url);
  const where = parsed.where;
  const explain = (e: unknown): string => scrub(e instanceof Error ? e.message : String(e), parsed.password);
  const attempts = Math.max(1, retry.attempts ?? 4);
  let delay = retry.baseDelayMs ?? 250;
  let last = '';
  const { default: driver } = await import('pg');
  for (let attempt = 1; attempt <= attempts; attempt++) {
    const client = new driver.Client({ connectionString: url, connectionTimeoutMillis: retry.connectTimeoutMs ?? 5000 });
    // A connection dropped while idle would otherwise crash the process; the next query reports it.
    client.on('error', () => undefined);
    try {
      await client.connect();
      // Literals are written to read the same either way (predicate.ts), but a server or database
      // default of `off` must not be what decides how a filter's backslash is read.
      await client.query('SET standard_conforming_strings = on');
      return {
        client,
        where,
        explain,
        close: async () => {
          await client.end().catch(() => undefined);
        },
      };
    } catch (e) {
      await client.end().catch(() => undefined);
      last = explain(e);
      if (attempt < attempts) {
        retry.onRetry?.(attempt, delay, last);
        await sleep(delay);
        delay *= 2;
      }
    }
  }
  throw new StewardError('STEWARD_E_SOURCE', `warehouse \`${targetName}\` is unreachable at \`${where}\` after ${attempts} attempt(s): ${last}`);
}
