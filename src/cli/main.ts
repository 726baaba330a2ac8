/**
 * The `steward` command line. Every command is a call to the HTTP API,
 * in-process on an embedded workspace or over the network to a server
 * (see client.ts), so the CLI and the API cannot disagree.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { registerCatalogCommands } from './catalog-commands.js';
import { registerDecisionCommands } from './decision-commands.js';
import { registerPolicyCommands } from './policy-commands.js';
import { registerPrincipalCommands } from './principal-commands.js';
import { registerServerCommands } from './server-commands.js';
import { registerCodeCommands } from './code-commands.js';
import { registerDemoCommands } from './demo-commands.js';
import { registerWarehouseCommands } from './warehouse-commands.js';
import { registerAccessCommands } from './access-commands.js';
import { registerQueryCommands } from './query-commands.js';
import { registerAuditCommands } from './audit-commands.js';
import { registerLoginCommands } from './login-commands.js';
import { registerExperimentCommands } from './experiment-commands.js';
import { registerSessionCommands } from './session-commands.js';
import { registerEmbedCommands } from './embed-commands.js';
import { registerResidencyCommands } from './residency-commands.js';
import { registerShareCommands } from './share-commands.js';
import { registerCleanroomCommands } from './cleanroom-commands.js';

/** One version everywhere: package.json's (bin/steward.js answers `--version` from it directly). */
const STEWARD_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export function buildProgram(): Command {
  const program = new Command('steward')
    .description('one tag-based entitlement source, enforced everywhere data is read')
    .version(STEWARD_VERSION)
    .option('--json', 'print machine-readable JSON')
    .option('--home <dir>', 'workspace folder (STEWARD_HOME, default ./.steward)')
    .option('--url <url>', 'a Steward server to talk to (STEWARD_URL)')
    .option('--token <token>', 'API token for --url (STEWARD_TOKEN)')
    .showHelpAfterError()
    .exitOverride();
  registerDemoCommands(program);
  registerServerCommands(program);
  registerDecisionCommands(program);
  registerCodeCommands(program);
  registerCatalogCommands(program);
  registerPrincipalCommands(program);
  registerPolicyCommands(program);
  registerWarehouseCommands(program);
  registerAccessCommands(program);
  registerQueryCommands(program);
  registerAuditCommands(program);
  registerLoginCommands(program);
  registerExperimentCommands(program);
  registerSessionCommands(program);
  registerResidencyCommands(program);
  registerEmbedCommands(program);
  registerShareCommands(program);
  registerCleanroomCommands(program);
  return program;
}

/**
 * A reader that closes stdout early (`steward … | head -1`) ends the output,
 * not the command: writes after that are dropped instead of crashing with an
 * unhandled EPIPE, so the work still finishes and the store closes cleanly.
 */
function tolerateClosedStdout(): void {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE' || e.code === 'ERR_STREAM_DESTROYED') return;
    throw e;
  });
}

export async function main(argv: readonly string[]): Promise<void> {
  tolerateClosedStdout();
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
  } catch (e) {
    const err = e as { code?: string; exitCode?: number };
    // commander throws on --help/--version with exit code 0, and on usage errors with 1.
    if (typeof err.exitCode === 'number') {
      process.exitCode = err.exitCode;
      return;
    }
    throw e;
  }
}
