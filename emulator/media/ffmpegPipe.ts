import { spawn } from 'node:child_process';
import { RingBuffer, lineSplitter } from '../../agent/log.js';

export interface FfmpegOptions {
  ffmpegPath: string;
  /** ffmpeg is killed after this long (a request must not hang on a stuck child). */
  timeoutMs: number;
}

/** ffmpeg failed to start, exited non-zero or was killed at the timeout; the message ends with its stderr. */
export class FfmpegError extends Error {
  readonly code = 'FFMPEG_FAILED';
}

/**
 * Runs ffmpeg with `input` on stdin and resolves with everything it wrote to stdout, buffered, so that a
 * failure can still be answered with an error status (GetClip, HLS segments, GetImages).
 */
export function ffmpegPipe(args: readonly string[], input: Buffer, options: FfmpegOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(options.ffmpegPath, [...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const stderr = new RingBuffer(20);
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on(
      'data',
      lineSplitter((line) => stderr.push(line)),
    );
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new FfmpegError(`ffmpeg could not start: ${err.message}`, { cause: err }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new FfmpegError(`ffmpeg exited with ${code ?? signal}: ${stderr.lines().join(' | ')}`));
    });
    // EPIPE when ffmpeg dies early is reported through 'close'.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}
