/**
 * `steward residency check`: tables that break a residency guardrail where
 * they are now (docs/residency.md). Exits 1 when there is an enforced
 * violation, so a scheduled job can alert on it; report-only ones print but
 * exit 0 (they are what report-only is for).
 */
import type { Command } from 'commander';
import { emit, table } from './output.js';
import { withClient } from './run.js';

interface CheckJson {
  guardrails: number;
  tables: number;
  violations: { table: string; guardrail: string; mode: string; place: string; regions: (string | null)[]; allowed: string[] }[];
}

export function registerResidencyCommands(program: Command): void {
  const residency = program.command('residency').description('residency guardrails: where tagged data may be');
  residency
    .command('check')
    .description('list tables that break a residency guardrail (lake files, warehouse targets); exit 1 on an enforced violation')
    .action(async (_o: unknown, cmd: Command) =>
      withClient(cmd, async ({ client, out }) => {
        const r = await client.call<CheckJson>('GET', '/v1/residency/check');
        emit(out, r, () => {
          if (r.guardrails === 0) return 'no residency guardrails';
          if (r.violations.length === 0) return `no violations (${r.tables} table(s), ${r.guardrails} residency guardrail(s))`;
          return table(
            r.violations.map((v) => ({
              table: v.table,
              guardrail: v.guardrail,
              mode: v.mode,
              place: v.place,
              regions: v.regions.map((x) => x ?? '(none)').join(','),
              allowed: v.allowed.join(','),
            })),
            ['table', 'guardrail', 'mode', 'place', 'regions', 'allowed'],
          );
        });
        if (r.violations.some((v) => v.mode === 'enforce')) process.exitCode = 1;
      }),
    );
}
