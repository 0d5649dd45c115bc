import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');

export interface EmulatorCli {
  /** The first line `npm run emulator` prints (endpoint, region, credentials). */
  line: string;
  /** The second: `Recordings player at <url>`. */
  playerLine: string;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/**
 * `npm run emulator` as a user runs it, through tsx directly so that signals reach the emulator, not npm.
 * Resolves with its first two output lines.
 */
export async function startEmulatorCli(env: Record<string, string>): Promise<EmulatorCli> {
  const child = spawn(
    process.execPath,
    [resolve(ROOT, 'node_modules/tsx/dist/cli.mjs'), 'emulator/main.ts'],
    {
      cwd: ROOT,
      env: { ...process.env, KVS_EMULATOR_PORT: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  const stop = async () => {
    child.kill('SIGTERM');
    return exited;
  };
  try {
    const [line, playerLine] = await new Promise<string[]>((done, fail) => {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const lines = out.split('\n');
        if (lines.length > 2) done(lines.slice(0, 2));
      });
      child.once('exit', (code) => fail(new Error(`emulator exited early with ${code}`)));
    });
    return { line: line!, playerLine: playerLine!, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
