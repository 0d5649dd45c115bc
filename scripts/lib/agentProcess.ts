import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { lineSplitter } from '../../agent/log.js';
import { NODE_FLAGS } from '../../agent/nodeFlags.js';

const ROOT = resolve(import.meta.dirname, '../..');

export interface AgentLogLine {
  level: string;
  msg: string;
  [key: string]: unknown;
}

export interface AgentProcess {
  readonly child: ChildProcess;
  readonly lines: AgentLogLine[];
  readonly stderr: string[];
  /** Resolves with the first log line matching `predicate`; rejects on timeout or exit. */
  waitForLog(predicate: (line: AgentLogLine) => boolean, timeoutMs: number): Promise<AgentLogLine>;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** The agent as the image runs it: compiled by `npm run build` (tsc into dist/node). */
export const COMPILED_AGENT = resolve(ROOT, 'dist/node/agent/main.js');

/**
 * Runs the real agent as a child in its own process group, the way a user runs it, and collects its JSON log
 * lines: `agent/main.ts` through tsx (as `npm start` does), or with `compiled` the built `COMPILED_AGENT` (as
 * the image does; what the bench measures, since tsx adds its own memory and an esbuild child).
 */
export function spawnAgent(options: {
  args: string[];
  env: Record<string, string>;
  onLine?: (line: AgentLogLine) => void;
  compiled?: boolean;
}): AgentProcess {
  const child = spawn(
    process.execPath,
    // Warnings are not lost: main.ts logs them as structured lines.
    [
      '--no-warnings',
      ...NODE_FLAGS,
      ...(options.compiled ? [COMPILED_AGENT] : ['--import', 'tsx', resolve(ROOT, 'agent/main.ts')]),
      // A free port for /healthz and /metrics unless the caller picks one: agents in tests run side by side.
      ...(options.args.includes('--metrics-address') ? [] : ['--metrics-address', '127.0.0.1:0']),
      ...options.args,
    ],
    {
      cwd: ROOT,
      env: { ...inheritedEnv(), ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    },
  );
  const lines: AgentLogLine[] = [];
  const stderr: string[] = [];
  const waiters = new Set<{ predicate: (l: AgentLogLine) => boolean; resolve: (l: AgentLogLine) => void }>();
  child.stdout?.on(
    'data',
    lineSplitter((text) => {
      let line: AgentLogLine;
      try {
        line = JSON.parse(text) as AgentLogLine;
      } catch {
        line = { level: 'info', msg: text };
      }
      lines.push(line);
      options.onLine?.(line);
      for (const w of waiters) {
        if (w.predicate(line)) {
          waiters.delete(w);
          w.resolve(line);
        }
      }
    }),
  );
  child.stderr?.on(
    'data',
    lineSplitter((text) => {
      stderr.push(text);
      options.onLine?.({ level: 'stderr', msg: text });
    }),
  );
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    child.once('exit', (code, signal) => res({ code, signal })),
  );
  return {
    child,
    lines,
    stderr,
    exited,
    waitForLog(predicate, timeoutMs) {
      const found = lines.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise<AgentLogLine>((res, rej) => {
        const waiter = {
          predicate,
          resolve: (l: AgentLogLine) => {
            clearTimeout(timer);
            res(l);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          rej(
            new Error(
              `agent did not log the expected line within ${timeoutMs} ms; last: ${lastLines(lines)}`,
            ),
          );
        }, timeoutMs);
        waiters.add(waiter);
        void exited.then(({ code, signal }) => {
          if (!waiters.has(waiter)) return;
          waiters.delete(waiter);
          clearTimeout(timer);
          rej(
            new Error(
              `agent exited (${code ?? signal}) before the expected line; last: ${lastLines(lines)} ${stderr.join('\n')}`,
            ),
          );
        });
      });
    },
  };
}

/**
 * The display of the caller's desktop, for `--headed`: X11 (with the cookie file, which xvfb-run and display
 * managers keep outside ~/.Xauthority) and Wayland. The agent hands the same variables on to Chromium.
 */
export const DISPLAY_ENV = [
  'DISPLAY',
  'XAUTHORITY',
  'WAYLAND_DISPLAY',
  'XDG_RUNTIME_DIR',
  'XDG_SESSION_TYPE',
];

/**
 * What the agent needs from the caller's environment: no AWS variables, only paths (kvssink via GST_*) and
 * the display.
 */
function inheritedEnv(): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
  };
  for (const key of ['GST_PLUGIN_PATH', 'GST_REGISTRY', 'LD_LIBRARY_PATH', 'CHROMIUM_PATH', ...DISPLAY_ENV]) {
    const value = process.env[key];
    if (value) env[key] = value;
  }
  return env;
}

function lastLines(lines: AgentLogLine[]): string {
  return lines
    .slice(-8)
    .map((l) => `${l.level} ${l.msg}`)
    .join(' | ');
}
