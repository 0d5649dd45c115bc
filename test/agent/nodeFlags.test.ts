import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { expect, test } from '@playwright/test';
import { NODE_FLAGS } from '../../agent/nodeFlags.js';

/**
 * The agent runs with the same Node flags everywhere (scripts/lib/agentProcess.ts imports the list itself;
 * scripts/containerCheck.ts checks the built image's ENTRYPOINT): here the two places that cannot import it.
 */
const ROOT = resolve(import.meta.dirname, '../..');

test('the image ENTRYPOINT and npm start run the agent with NODE_FLAGS', async () => {
  const dockerfile = await readFile(resolve(ROOT, 'Dockerfile'), 'utf8');
  const entrypoints = [...dockerfile.matchAll(/^ENTRYPOINT (\[.*\])$/gm)]
    .map((m) => JSON.parse(m[1]!) as string[])
    .filter((argv) => argv.includes('dist/node/agent/main.js'));
  expect(entrypoints).toHaveLength(1);
  const argv = entrypoints[0]!;
  for (const flag of NODE_FLAGS)
    expect(argv.slice(argv.indexOf('node'), argv.indexOf('dist/node/agent/main.js'))).toContain(flag);

  const pkg = JSON.parse(await readFile(resolve(ROOT, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };
  const start = pkg.scripts.start!.split(' ');
  for (const flag of NODE_FLAGS) expect(start.slice(0, start.indexOf('agent/main.ts'))).toContain(flag);
});
