#!/usr/bin/env node
// The installed entry point runs the compiled CLI (npm run build).
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  // Answered before loading the command table: the version is all this asks for.
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`${pkg.version}\n`);
} else {
  import('../dist/cli/main.js').then((m) => m.main(process.argv)).catch((e) => {
    process.stderr.write(`steward: ${e?.message ?? e}\n(run \`npm run build\` first if dist/ is missing)\n`);
    process.exitCode = 2;
  });
}
