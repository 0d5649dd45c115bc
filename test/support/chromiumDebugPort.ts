import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/lib/chromium/chromium';

/**
 * The agent's Chromium has no debugging port (a pipe only). A test starts it through this wrapper, which
 * adds one and notes the profile directory, where Chromium writes the port it picked: so the test can reach
 * the agent's own pages over CDP (`--chromium-path <path>`).
 */
export async function chromiumWithDebugPort(
  dir: string,
): Promise<{ path: string; port: () => Promise<number> }> {
  const path = join(dir, 'chromium-with-debug-port.sh');
  const note = join(dir, 'user-data-dir');
  await writeFile(
    path,
    [
      '#!/bin/sh',
      'for a in "$@"; do',
      `  case "$a" in --user-data-dir=*) printf '%s' "\${a#--user-data-dir=}" > '${note}';; esac`,
      'done',
      `exec '${CHROMIUM}' --remote-debugging-port=0 "$@"`,
      '',
    ].join('\n'),
  );
  await chmod(path, 0o755);
  const port = async () => {
    const profile = await readFile(note, 'utf8');
    const active = await readFile(join(profile, 'DevToolsActivePort'), 'utf8');
    return Number(active.split('\n')[0]);
  };
  return { path, port };
}
