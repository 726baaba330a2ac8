/**
 * `steward sessions list` and `steward sessions revoke <id>`: the web
 * console's live sessions, for admins (`GET /v1/sessions`,
 * `DELETE /v1/sessions/:id`). An id is the 16 hex digits the list and the
 * decision log show; nothing printed here opens a session.
 */
import type { Command } from 'commander';
import { emit, table } from './output.js';
import { enc, withClient } from './run.js';

type SessionJson = {
  id: string;
  principal: string;
  role: string;
  via: string;
  createdAt: string;
  lastSeenAt: string;
  idleExpiresAt: string;
  expiresAt: string;
};

export function registerSessionCommands(program: Command): void {
  const sessions = program.command('sessions').description("the web console's live sessions (admins)");
  sessions
    .command('list')
    .description('live console sessions: who, signed in how, last use, when each ends')
    .action(async (_o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<{ sessions: SessionJson[] }>('GET', '/v1/sessions');
        emit(out, r, () => (r.sessions.length === 0 ? 'no live sessions' : table(r.sessions, ['id', 'principal', 'role', 'via', 'createdAt', 'lastSeenAt', 'expiresAt'])));
      }),
    );
  sessions
    .command('revoke <id>')
    .description('end a console session now: its cookie opens nothing from its next request on')
    .action(async (id: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call('DELETE', `/v1/sessions/${enc(id)}`);
        emit(out, r, () => `revoked session ${id}`);
      }),
    );
}
