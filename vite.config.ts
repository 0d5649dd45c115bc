import { resolve } from 'node:path';
import { defineConfig } from 'vite';

/**
 * Builds the browser bundles: the agent's viewer page (`page/`), the reference master page and the
 * bench's receive-floor viewer (`WebRTC/`). All must work offline, so every dependency is bundled; nothing loads from a CDN.
 */
export default defineConfig({
  root: import.meta.dirname,
  base: './',
  build: {
    outDir: 'dist/web',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    rollupOptions: {
      input: {
        page: resolve(import.meta.dirname, 'page/index.html'),
        master: resolve(import.meta.dirname, 'WebRTC/index.html'),
        floor: resolve(import.meta.dirname, 'WebRTC/floor.html'),
      },
    },
  },
  worker: { format: 'es' },
});
