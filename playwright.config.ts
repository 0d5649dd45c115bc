import { defineConfig } from '@playwright/test';

/**
 * One runner for every level of the pyramid: unit and integration tests (emulator, timeline, muxer,
 * GStreamer) and end-to-end runs with real Chromium. Browsers come from Debian (`CHROMIUM_PATH`), never
 * from a download.
 */
export default defineConfig({
  testDir: 'test',
  testMatch: '**/*.test.ts',
  // Media tests start Chromium and GStreamer: on a 2-core machine one worker keeps timings honest.
  workers: 1,
  timeout: 120_000,
  expect: { timeout: 15_000 },
  retries: 0,
  forbidOnly: !!process.env.CI,
  reporter: [['list'], ['./test/support/summaryReporter.ts']],
  outputDir: 'test-results',
});
