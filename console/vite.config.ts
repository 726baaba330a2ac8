// The web console's build: static files in dist/console that `steward serve`
// serves under a CSP with no inline script or style (src/server/console-assets.ts).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  plugins: [react()],
  build: {
    outDir: fileURLToPath(new URL('../dist/console', import.meta.url)),
    emptyOutDir: true,
    // The preload polyfill would be an inline script; every browser we support has modulepreload.
    modulePreload: { polyfill: false },
    // Nothing becomes a data: URL or an inline blob: assets stay files under 'self'.
    assetsInlineLimit: 0,
    sourcemap: false,
    reportCompressedSize: true,
    // ECharts' core alone is ~380 KB minified; it is a lazy chunk of the audit page only (docs/console.md, Size).
    chunkSizeWarningLimit: 600,
  },
});
