/**
 * `steward stop`: ends the server that `server.json` names, after the same
 * checks the CLI makes before trusting it (yours, this host, a live
 * `steward serve` holding this workspace), so it never signals a stranger.
 */
import { StewardError } from '../errors.js';
import { isPidAlive, readServerInfo } from '../store/workspace.js';

const WAIT_MS = 30_000;

export async function stopServer(home: string): Promise<{ stopped: boolean; pid?: number }> {
  const info = await readServerInfo(home);
  if (info === null) return { stopped: false };
  process.kill(info.pid, 'SIGTERM');
  const deadline = Date.now() + WAIT_MS;
  while (isPidAlive(info.pid)) {
    if (Date.now() > deadline) throw new StewardError('STEWARD_E_INTERNAL', `the server pid ${info.pid} did not stop within ${WAIT_MS / 1000} s`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { stopped: true, pid: info.pid };
}
