/**
 * Versioned schema migrations, applied when the store opens.
 *
 * All pending migrations run in one transaction that first takes a
 * transaction-scoped advisory lock, so two processes opening the same
 * PostgreSQL database at once migrate one after the other (the second finds
 * nothing left to do). The same SQL runs on PGlite and PostgreSQL.
 *
 * A migration, once released, is never edited: add a new one.
 */
import { StewardError } from '../errors.js';
import { INITIAL } from './migrations/001-initial.js';
import { GATEWAY } from './migrations/002-gateway.js';
import { ACCESS } from './migrations/003-access.js';
import { AUDIT } from './migrations/004-audit.js';
import { SYNC } from './migrations/005-sync.js';
import { GUARDRAIL_LIFTS } from './migrations/006-guardrail-lifts.js';
import { AUDIT_BATCHES } from './migrations/007-audit-batches.js';
import { MONITOR_DELIVERIES } from './migrations/008-monitor-deliveries.js';
import { SESSIONS } from './migrations/009-sessions.js';
import { EXPERIMENTS } from './migrations/010-experiments.js';
import { EMBED } from './migrations/011-embed.js';
import { RESIDENCY } from './migrations/013-residency.js';
import { SHARING } from './migrations/014-sharing.js';
import { CLEANROOMS } from './migrations/012-cleanrooms.js';
import { DECISION_SPOOL } from './migrations/015-decision-spool.js';
import { AUDIT_BATCH_INDEX } from './migrations/016-audit-batch-index.js';

/** The SQL a migration runs inside its transaction. */
export interface MigrationSql {
  query<T>(sql: string, params?: readonly unknown[]): Promise<{ readonly rows: T[] }>;
  exec(sql: string): Promise<void>;
}

/**
 * What migrating needs of a store: a way to run a function in one
 * transaction. Declared here rather than imported from `db.ts`, which opens
 * stores and migrates them, so the two modules do not import each other; a
 * `Db` fits as it is.
 */
export interface MigrationTarget {
  transaction<T>(fn: (tx: MigrationSql) => Promise<T>): Promise<T>;
}

export interface Migration {
  /** 1, 2, 3, … with no gaps; recorded in `steward.migrations`. */
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: 'initial', sql: INITIAL },
  { version: 2, name: 'gateway', sql: GATEWAY },
  { version: 3, name: 'access', sql: ACCESS },
  { version: 4, name: 'audit', sql: AUDIT },
  { version: 5, name: 'sync', sql: SYNC },
  { version: 6, name: 'guardrail-lifts', sql: GUARDRAIL_LIFTS },
  { version: 7, name: 'audit-batches', sql: AUDIT_BATCHES },
  { version: 8, name: 'monitor-deliveries', sql: MONITOR_DELIVERIES },
  { version: 9, name: 'sessions', sql: SESSIONS },
  { version: 10, name: 'experiments', sql: EXPERIMENTS },
  { version: 11, name: 'embed', sql: EMBED },
  { version: 12, name: 'cleanrooms', sql: CLEANROOMS },
  { version: 13, name: 'residency', sql: RESIDENCY },
  { version: 14, name: 'sharing', sql: SHARING },
  { version: 15, name: 'decision-spool', sql: DECISION_SPOOL },
  { version: 16, name: 'audit-batch-index', sql: AUDIT_BATCH_INDEX },
];

/** Any constant works; it only has to be the same in every Steward process. */
const MIGRATION_LOCK_ID = 7_311_592_001;

const BOOTSTRAP = `
CREATE SCHEMA IF NOT EXISTS steward;
CREATE TABLE IF NOT EXISTS steward.migrations (
  version integer PRIMARY KEY,
  name text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now()
);
`;

export interface MigrateResult {
  /** Versions applied by this call (empty when the schema was current). */
  readonly applied: readonly number[];
  readonly version: number;
}

/**
 * Brings the schema to the latest version. Idempotent. Refuses a database
 * whose schema is newer than this build knows (an older Steward must not
 * write to it).
 */
export async function migrate(db: MigrationTarget, migrations: readonly Migration[] = MIGRATIONS): Promise<MigrateResult> {
  checkSequence(migrations);
  const latest = migrations.at(-1)?.version ?? 0;
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_ID]);
    await tx.exec(BOOTSTRAP);
    const { rows } = await tx.query<{ version: number; name: string }>('SELECT version, name FROM steward.migrations ORDER BY version');
    const done = new Map(rows.map((r) => [r.version, r.name]));
    const current = rows.at(-1)?.version ?? 0;
    if (current > latest) {
      throw new StewardError(
        'STEWARD_E_CONFIG',
        `the database schema is at version ${current}, newer than this steward knows (${latest}); upgrade steward`,
      );
    }
    const applied: number[] = [];
    for (const m of migrations) {
      const name = done.get(m.version);
      if (name !== undefined) {
        if (name !== m.name) {
          throw new StewardError('STEWARD_E_CONFIG', `migration ${m.version} is recorded as \`${name}\` but this steward calls it \`${m.name}\``);
        }
        continue;
      }
      await tx.exec(m.sql);
      await tx.query('INSERT INTO steward.migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      applied.push(m.version);
    }
    return { applied, version: latest };
  });
}

function checkSequence(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new StewardError('STEWARD_E_INTERNAL', `migration versions must be 1..n without gaps, found ${m.version} at position ${i + 1}`);
  });
}
