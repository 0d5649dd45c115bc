import { spawn, type ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';
import { ChildProcessError, InvalidStateError } from '../errors.js';
import { lineSplitter, RingBuffer, type Logger } from '../log.js';
import { TypedEmitter } from '../typedEmitter.js';

export interface GstProcessOptions {
  /** Pipeline description as argv (see buildPipelineArgs); `-e` is added here. */
  args: string[];
  /** How many input pipes the pipeline reads: stdin, then fd 3, 4 … (see pipelineInputs). Default 1. */
  inputs?: number;
  /** Default `gst-launch-1.0` (looked up on PATH). A seam for tests. */
  gstLaunchPath?: string;
  /** Extra environment for the child (e.g. kvssink's CONTROL_PLANE_URI). Nothing else of ours leaks in. */
  env?: Record<string, string>;
  logger: Logger;
  /** How long gst may take to build the pipeline and start prerolling. Default 10000. */
  readyTimeoutMs?: number;
  /** Every output line, for parsers of element-specific messages (kvssink's stream errors). */
  onLine?: (line: string) => void;
}

export interface GstExit {
  exitCode: number | null;
  signal: string | null;
}

export interface GstProcessEvents extends Record<string, unknown[]> {
  /** The child exited (or failed) after start() resolved, without close() asking it to. */
  died: [ChildProcessError];
}

// gst-launch prints this once the pipeline is built and linked; with fdsrc it comes before any input.
const READY_LINE = /^Pipeline is (PREROLLING|PREROLLED|live)/;
// Any of these before readiness means the pipeline will not run.
const FATAL_LINE = /^(ERROR: |WARNING: erroneous pipeline)/;
/** Per escalation step (SIGINT, SIGTERM, SIGKILL) when gst does not finish after stdin EOF. */
const ESCALATION_STEP_MS = 1000;

/** The variables gst needs from our environment: where to find binaries, plugins and its registry. */
function childEnv(extra: Record<string, string> | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined) continue;
    if (
      key === 'PATH' ||
      key === 'HOME' ||
      key === 'LANG' ||
      key === 'LD_LIBRARY_PATH' ||
      key.startsWith('GST_')
    ) {
      env[key] = value;
    }
  }
  return { ...env, ...extra };
}

/**
 * Supervises one `gst-launch-1.0 -e` child that reads Matroska on its input pipes (stdin, fd 3 …).
 *
 * It never restarts anything: `start()` rejects if the pipeline never came up, `died` reports deaths after
 * that, and `close()` ends it gracefully (inputs EOF → EOS → muxer finishes the file) with escalation.
 */
export class GstProcess extends TypedEmitter<GstProcessEvents> {
  readonly #options: GstProcessOptions;
  readonly #log: Logger;
  readonly #output = new RingBuffer(50);
  #child: ChildProcess | undefined;
  #exit: GstExit | undefined;
  readonly #exited: Promise<GstExit>;
  #resolveExited!: (exit: GstExit) => void;
  #ready = false;
  #closing: Promise<GstExit> | undefined;

  constructor(options: GstProcessOptions) {
    super();
    this.#options = options;
    this.#log = options.logger;
    this.#exited = new Promise((resolve) => (this.#resolveExited = resolve));
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** gst's stdin, its first input. Valid after start() resolved. */
  get stdin(): Writable {
    return this.input(0);
  }

  /** Input `index`: 0 is stdin, 1 is fd 3, and so on. Valid after start() resolved. */
  input(index: number): Writable {
    const input = this.#inputs()[index];
    if (!input) throw new InvalidStateError(`GStreamer has no input ${index} (not started?)`);
    return input;
  }

  #inputs(): Writable[] {
    const child = this.#child;
    if (!child) return [];
    const count = this.#options.inputs ?? 1;
    return [child.stdin, ...child.stdio.slice(3, 2 + count)].filter(
      (s): s is Writable => s !== null && s !== undefined && 'write' in s,
    );
  }

  /** The last lines gst printed, for error reports. */
  recentOutput(): string[] {
    return this.#output.lines();
  }

  start(): Promise<void> {
    if (this.#child) return Promise.reject(new InvalidStateError('GStreamer was already started'));
    const path = this.#options.gstLaunchPath ?? 'gst-launch-1.0';
    const timeoutMs = this.#options.readyTimeoutMs ?? 10_000;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const fail = (message: string, cause?: unknown): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(this.#error(message, cause));
      };
      const timer = setTimeout(() => {
        fail(`GStreamer did not become ready within ${timeoutMs} ms`);
        this.#signal('SIGKILL');
      }, timeoutMs);

      // Its own process group: a Ctrl-C in the terminal reaches the agent only, which ends gst in its own
      // teardown order (EOS first); signals from us go to the whole group.
      const child = spawn(path, ['-e', ...this.#options.args], {
        stdio: [
          'pipe',
          'pipe',
          'pipe',
          ...Array<'pipe'>(Math.max(0, (this.#options.inputs ?? 1) - 1)).fill('pipe'),
        ],
        env: childEnv(this.#options.env),
        detached: true,
      });
      this.#child = child;
      this.#log.info({ pid: child.pid, path }, 'GStreamer spawned');

      const onLine = (stream: 'stdout' | 'stderr') =>
        lineSplitter((line) => {
          this.#output.push(line);
          this.#log.debug({ stream }, line);
          this.#options.onLine?.(line);
          if (settled) return;
          if (READY_LINE.test(line)) {
            settled = true;
            clearTimeout(timer);
            this.#ready = true;
            resolve();
          } else if (FATAL_LINE.test(line)) {
            fail(`GStreamer failed to start: ${line}`);
            this.#signal('SIGKILL');
          }
        });
      child.stdout.on('data', onLine('stdout'));
      child.stderr.on('data', onLine('stderr'));
      // EPIPE when gst is gone: the exit handler reports the death, the writer sees its own error.
      for (const input of this.#inputs())
        input.on('error', (err) => this.#log.debug({ err: err }, 'gst input error'));
      child.on('error', (err) => fail(`could not run ${path}: ${err.message}`, err));
      // 'close' (not 'exit'): by then stdout/stderr are drained, so the error carries gst's last words.
      child.on('close', (exitCode, signal) => {
        this.#exit = { exitCode, signal };
        this.#resolveExited(this.#exit);
        this.#log.info({ pid: child.pid, exitCode, signal }, 'GStreamer exited');
        if (!settled) {
          fail(`GStreamer exited before it was ready (code ${exitCode}, signal ${signal})`);
        } else if (this.#ready && !this.#closing) {
          this.safeEmit(
            'died',
            this.#error(`GStreamer exited unexpectedly (code ${exitCode}, signal ${signal})`),
          );
        }
      });
    });
  }

  /**
   * Graceful end: close the inputs so each fdsrc sends EOS and the muxer finishes the file, then wait for exit.
   * Escalates to SIGINT (gst-launch -e turns it into EOS too), SIGTERM, SIGKILL, sent to gst's process group.
   * Idempotent. `timeoutMs` is the EOS wait; the whole close takes at most timeoutMs + 3 steps.
   */
  close(options: { timeoutMs?: number; escalationStepMs?: number } = {}): Promise<GstExit> {
    this.#closing ??= this.#doClose(
      options.timeoutMs ?? 10_000,
      options.escalationStepMs ?? ESCALATION_STEP_MS,
    );
    return this.#closing;
  }

  /** Ends gst at once (SIGKILL to its group), e.g. when it hung. */
  kill(): void {
    this.#signal('SIGKILL');
  }

  #signal(signal: NodeJS.Signals): void {
    const child = this.#child;
    if (!child?.pid || this.#exit) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // The group is gone already (or never formed): fall back to the child itself.
      child.kill(signal);
    }
  }

  async #doClose(timeoutMs: number, stepMs: number): Promise<GstExit> {
    const child = this.#child;
    if (!child) return { exitCode: null, signal: null };
    if (this.#exit) return this.#exit;
    // A hung gst may never take what is queued on its inputs: end() without waiting for a drain.
    for (const input of this.#inputs()) input.end();
    const steps: [NodeJS.Signals | null, number][] = [
      [null, timeoutMs],
      ['SIGINT', stepMs],
      ['SIGTERM', stepMs],
      ['SIGKILL', stepMs],
    ];
    for (const [signal, waitMs] of steps) {
      if (signal) {
        this.#log.warn({ pid: child.pid, signal }, 'GStreamer did not finish in time: escalating');
        this.#signal(signal);
      }
      const exit = await this.#waitExit(waitMs);
      if (exit) return exit;
    }
    return this.#exited;
  }

  async #waitExit(ms: number): Promise<GstExit | undefined> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.#exited,
        new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms))),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  #error(message: string, cause?: unknown): ChildProcessError {
    return new ChildProcessError(
      message,
      {
        child: 'gst-launch-1.0',
        pid: this.#child?.pid,
        exitCode: this.#exit?.exitCode,
        signal: this.#exit?.signal,
        recentOutput: this.#output.lines(),
      },
      cause === undefined ? undefined : { cause },
    );
  }
}
