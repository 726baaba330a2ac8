/**
 * `steward demo`: the demo workspace, generated deterministically and
 * idempotently (a second run changes nothing).
 */
import type { Command } from 'commander';
import { emit } from './output.js';
import { withClient } from './run.js';

interface DemoJson {
  lake: string;
  tables: { table: string; rows: number }[];
  changes: number;
}

export function registerDemoCommands(program: Command): void {
  program
    .command('demo')
    .description('create the demo workspace: Parquet claims and revenue, tags, principals, grants, a data filter and a PII guardrail')
    .action(async (_o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<DemoJson>('POST', '/v1/demo', {});
        emit(out, r, () =>
          [
            `Demo workspace ready (${r.changes === 0 ? 'already up to date' : `${r.changes} change(s)`}); lake at ${r.lake}`,
            ...r.tables.map((t) => `  ${t.table}: ${t.rows} rows`),
            '',
            'Try: steward authorize --principal alice --action SELECT --resource lake.claims.patient_claims.ssn',
          ].join('\n'),
        );
      }),
    );
}
