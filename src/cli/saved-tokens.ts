/**
 * Where `steward login` keeps the token it got from a server, and how later
 * commands find it: one file per server origin
 * (`$XDG_CONFIG_HOME/steward/tokens/<origin>`, else `~/.config/…`), so a token
 * is only ever sent back to the server that issued it, never to another
 * `--url`. The file is trusted only when it is yours with mode 0600.
 */
import { lstat, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

function configHome(env: NodeJS.ProcessEnv): string {
  return env['XDG_CONFIG_HOME'] ?? path.join(os.homedir(), '.config');
}

/** The token file of the server at `serverUrl` (its origin names the file). */
export function savedTokenFile(serverUrl: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.join(configHome(env), 'steward', 'tokens', encodeURIComponent(new URL(serverUrl).origin));
}

/** The token `steward login` saved for `serverUrl`, or undefined (none, or a file someone else could have written). */
export async function savedToken(serverUrl: string, warn: (message: string) => void, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const file = savedTokenFile(serverUrl, env);
  const s = await lstat(file).catch(() => null);
  if (s === null) return undefined;
  const uid = process.getuid?.();
  if (!s.isFile() || (uid !== undefined && s.uid !== uid) || (s.mode & 0o777) !== 0o600) {
    warn(`ignoring \`${file}\`: a saved token must be your own regular file with mode 0600`);
    return undefined;
  }
  const token = (await readFile(file, 'utf8').catch(() => '')).split('\n', 1)[0]?.trim() ?? '';
  return token === '' ? undefined : token;
}
