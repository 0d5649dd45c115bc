import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { lineSplitter } from '../../../agent/log.js';
import type { SentFrame } from '../../../WebRTC/synthetic/syntheticMaster.js';

const ROOT = resolve(import.meta.dirname, '../../..');

export interface MasterProcess {
  readonly child: ChildProcess;
  /** Answers sent, per channel, epoch ms (the last is the one the agent's current peer took). */
  readonly answers: Map<string, number[]>;
  /** SIGTERM, wait for the exit (the sent log is complete after it), then the frames sent per channel. */
  stop(): Promise<Map<string, SentFrame[]>>;
}

/**
 * Synthetic masters for `channels` in one process of their own (`WebRTC/synthetic/main.ts`): their CPU is not
 * in the agent's process tree, so the bench does not count it. Resolves once every channel's signaling is open.
 */
export async function startMasterProcess(options: {
  endpoint: string;
  region: string;
  channels: string[];
  resolution: string;
  sentLog: string;
  env: Record<string, string>;
}): Promise<MasterProcess> {
  const child = spawn(
    process.execPath,
    [
      '--no-warnings',
      '--import',
      'tsx',
      resolve(ROOT, 'WebRTC/synthetic/main.ts'),
      '--endpoint',
      options.endpoint,
      '--region',
      options.region,
      '--resolution',
      options.resolution,
      '--sent-log',
      options.sentLog,
      ...options.channels.flatMap((c) => ['--channel', c]),
    ],
    {
      cwd: ROOT,
      // Only what it needs: the clip cache's location and the credentials it is given.
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        ...(process.env.SYNTHETIC_MEDIA_DIR ? { SYNTHETIC_MEDIA_DIR: process.env.SYNTHETIC_MEDIA_DIR } : {}),
        LOG_LEVEL: 'warn',
        ...options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const answers = new Map<string, number[]>();
  const tail: string[] = [];
  let ready!: () => void;
  const isReady = new Promise<void>((r) => (ready = r));
  child.stdout.on(
    'data',
    lineSplitter((text) => {
      let line: { ready?: boolean; answered?: string; atMs?: number; msg?: string };
      try {
        line = JSON.parse(text) as typeof line;
      } catch {
        return;
      }
      if (line.ready) ready();
      else if (line.answered && typeof line.atMs === 'number')
        answers.set(line.answered, [...(answers.get(line.answered) ?? []), line.atMs]);
      else if (line.msg) tail.push(text);
      if (tail.length > 20) tail.shift();
    }),
  );
  child.stderr.on('data', (d: Buffer) => tail.push(d.toString()));
  const exited = once(child, 'exit');
  const failed = exited.then(() => {
    throw new Error(`the synthetic masters exited before they were ready:\n${tail.join('\n')}`);
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  try {
    await Promise.race([isReady, failed]);
  } finally {
    clearTimeout(timer);
  }
  failed.catch(() => undefined);
  return {
    child,
    answers,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(kill);
      const sent = new Map<string, SentFrame[]>();
      const text = await readFile(options.sentLog, 'utf8').catch(() => '');
      for (const line of text.split('\n')) {
        if (!line) continue;
        const { channel, ...frame } = JSON.parse(line) as SentFrame & { channel: string };
        let list = sent.get(channel);
        if (!list) sent.set(channel, (list = []));
        list.push(frame);
      }
      return sent;
    },
  };
}
