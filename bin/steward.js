#!/usr/bin/env node
// The installed entry point runs the compiled CLI (npm run build).
import('../dist/cli/main.js').then((m) => m.main(process.argv)).catch((e) => {
  process.stderr.write(`steward: ${e?.message ?? e}\n(run \`npm run build\` first if dist/ is missing)\n`);
  process.exitCode = 2;
});
