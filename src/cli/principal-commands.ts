/**
 * `steward user …`, `steward group …`, `steward idp …`.
 */
import type { Command } from 'commander';
import { emit, table } from './output.js';
import { enc, withClient } from './run.js';

export function registerPrincipalCommands(program: Command): void {
  const user = program.command('user').description('users');
  user
    .command('list')
    .action(async (_o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<{ users: { name: string; displayName?: string; groups: string[] }[] }>('GET', '/v1/users');
        emit(out, r, () => table(r.users.map((u) => ({ ...u, groups: u.groups.join(',') })), ['name', 'displayName', 'groups']));
      }),
    );
  user
    .command('add <name>')
    .option('--display-name <text>')
    .action(async (name: string, opts: { displayName?: string }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call('POST', '/v1/users', { name, ...opts });
        emit(out, r, () => `user ${name} saved`);
      }),
    );
  user
    .command('rm <name>')
    .description('delete a user with its memberships and grants')
    .action(async (name: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call('DELETE', `/v1/users/${enc(name)}`);
        emit(out, r, () => `user ${name} deleted`);
      }),
    );

  const group = program.command('group').description('groups and nested membership');
  group
    .command('list')
    .action(async (_o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<{ groups: { name: string; description?: string; members: string[] }[] }>('GET', '/v1/groups');
        emit(out, r, () => table(r.groups.map((g) => ({ ...g, members: g.members.join(',') })), ['name', 'members', 'description']));
      }),
    );
  group
    .command('add <name>')
    .option('--description <text>')
    .action(async (name: string, opts: { description?: string }, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call('POST', '/v1/groups', { name, ...opts });
        emit(out, r, () => `group ${name} saved`);
      }),
    );
  group
    .command('rm <name>')
    .action(async (name: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call('DELETE', `/v1/groups/${enc(name)}`);
        emit(out, r, () => `group ${name} deleted`);
      }),
    );
  group
    .command('add-member <group> <member>')
    .description('member: user:NAME, group:NAME, or a bare user name')
    .action(async (name: string, member: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call('POST', `/v1/groups/${enc(name)}/members`, { member });
        emit(out, r, () => `${member} added to ${name}`);
      }),
    );
  group
    .command('rm-member <group> <member>')
    .action(async (name: string, member: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call('DELETE', `/v1/groups/${enc(name)}/members/${enc(member)}`);
        emit(out, r, () => `${member} removed from ${name}`);
      }),
    );

  const idp = program.command('idp').description('identity-provider group mappings');
  idp
    .command('list')
    .action(async (_o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<{ mappings: { provider: string; externalGroup: string; group: string }[] }>('GET', '/v1/idp-mappings');
        emit(out, r, () => table(r.mappings, ['provider', 'externalGroup', 'group']));
      }),
    );
  idp
    .command('map <provider> <externalGroup> <group>')
    .action(async (provider: string, externalGroup: string, groupName: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call('POST', '/v1/idp-mappings', { provider, externalGroup, group: groupName });
        emit(out, r, () => `${provider}/${externalGroup} -> ${groupName}`);
      }),
    );
  idp
    .command('unmap <provider> <externalGroup>')
    .action(async (provider: string, externalGroup: string, _o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call('POST', '/v1/idp-mappings/delete', { provider, externalGroup });
        emit(out, r, () => `${provider}/${externalGroup} unmapped`);
      }),
    );
}
