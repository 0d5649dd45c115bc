import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { agentChromiumPath } from '../../agent/config.js';

/**
 * The agent's Chromium has no debugging port (a pipe only). A test starts it through this wrapper, which
 * adds one and notes the profile directory, where Chromium writes the port it picked: so the test can reach
 * the agent's own pages over CDP (`--chromium-path <path>`). `headed`: the binary the agent runs with
 * `--headed` (the full Chromium) instead of the headless shell; CHROMIUM_PATH replaces both, as for the agent.
 */
export async function chromiumWithDebugPort(
  dir: string,
  options: { headed?: boolean } = {},
): Promise<{ path: string; port: () => Promise<number> }> {
  const chromium = agentChromiumPath(options.headed);
  const path = join(dir, 'chromium-with-debug-port.sh');
  const note = join(dir, 'user-data-dir');
  await writeFile(
    path,
    [
      '#!/bin/sh',
      'for a in "$@"; do',
      `  case "$a" in --user-data-dir=*) printf '%s' "\${a#--user-data-dir=}" > '${note}';; esac`,
      'done',
      `exec '${chromium}' --remote-debugging-port=0 "$@"`,
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

/** A dedicated worker of one of the agent's pages, reached over the raw CDP connection. */
export interface WorkerSession {
  /** Runs `fn` in the worker (it must not close over anything) and returns its result. */
  evaluate<T>(fn: () => T): Promise<T>;
  close(): void;
}

/**
 * Playwright's connectOverCDP does not report the workers of pages that were already open, and neither does
 * puppeteer.connect (tried: its targets() lists none of them), so this attaches to one itself: the worker named `name` (`frames-video`, `frames-audio`) of the page served on `pagePort`.
 */
export async function workerSession(
  debugPort: number,
  pagePort: number,
  name: string,
): Promise<WorkerSession> {
  const version = (await (await fetch(`http://127.0.0.1:${debugPort}/json/version`)).json()) as {
    webSocketDebuggerUrl: string;
  };
  const ws = new WebSocket(version.webSocketDebuggerUrl);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  let nextId = 0;
  const pending = new Map<number, { resolve: (r: unknown) => void; reject: (e: Error) => void }>();
  ws.on('message', (data: Buffer) => {
    const msg = JSON.parse(data.toString()) as { id?: number; result?: unknown; error?: { message: string } };
    const call = msg.id === undefined ? undefined : pending.get(msg.id);
    if (!call) return;
    pending.delete(msg.id!);
    if (msg.error) call.reject(new Error(msg.error.message));
    else call.resolve(msg.result);
  });
  const send = <R>(method: string, params: object, sessionId?: string) =>
    new Promise<R>((resolve, reject) => {
      const id = ++nextId;
      pending.set(id, { resolve: (r) => resolve(r as R), reject });
      ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    });
  try {
    const { targetInfos } = await send<{
      targetInfos: { targetId: string; type: string; url: string; title: string }[];
    }>('Target.getTargets', {});
    const target = targetInfos.find(
      (t) => t.type === 'worker' && t.title === name && new URL(t.url).port === String(pagePort),
    );
    if (!target) throw new Error(`no worker ${name} on the page at port ${pagePort}`);
    const { sessionId } = await send<{ sessionId: string }>('Target.attachToTarget', {
      targetId: target.targetId,
      flatten: true,
    });
    return {
      async evaluate<T>(fn: () => T): Promise<T> {
        const { result, exceptionDetails } = await send<{
          result: { value: T };
          exceptionDetails?: { text: string; exception?: { description?: string } };
        }>(
          'Runtime.evaluate',
          { expression: `(${fn.toString()})()`, returnByValue: true, awaitPromise: true },
          sessionId,
        );
        if (exceptionDetails)
          throw new Error(exceptionDetails.exception?.description ?? exceptionDetails.text);
        return result.value;
      },
      close: () => ws.close(),
    };
  } catch (error) {
    ws.close();
    throw error;
  }
}
