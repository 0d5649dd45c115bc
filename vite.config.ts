import { resolve } from 'node:path';
import { defineConfig } from 'vite';

/**
 * Builds the browser bundles: the agent's viewer page (`page/`), the reference master page and the
 * bench's receive-floor viewer (`WebRTC/`), and the recordings player (`emulator/player/web/`). All must work offline, so every dependency is bundled; nothing loads from a CDN.
 */
export default defineConfig({
  root: import.meta.dirname,
  base: './',
  build: {
    outDir: 'dist/web',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    // The player bundles hls.js (≈ 550 kB minified); nothing here is fetched over a slow network.
    chunkSizeWarningLimit: 800,
    rollupOptions: {
      input: {
        page: resolve(import.meta.dirname, 'page/index.html'),
        master: resolve(import.meta.dirname, 'WebRTC/index.html'),
        floor: resolve(import.meta.dirname, 'WebRTC/floor.html'),
        player: resolve(import.meta.dirname, 'emulator/player/web/index.html'),
      },
    },
  },
  worker: { format: 'es' },
});
