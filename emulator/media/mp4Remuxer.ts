import { spawn } from 'node:child_process';
import { RingBuffer, lineSplitter } from '../../agent/log.js';

/**
 * Remuxes Matroska to fragmented MP4 with `ffmpeg -c copy` (no re-encoding), buffering the output so a
 * failure can still be answered with an error status. ffmpeg drops the producer's epoch offset (timestamps
 * start at 0), as KVS clips do.
 */
export function remuxToMp4(
  matroska: Buffer,
  options: { ffmpegPath: string; timeoutMs: number },
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      options.ffmpegPath,
      [
        '-hide_banner',
        '-nostdin',
        '-v',
        'error',
        '-f',
        'matroska',
        '-i',
        'pipe:0',
        '-c',
        'copy',
        '-f',
        'mp4',
        '-movflags',
        'frag_keyframe+empty_moov+default_base_moof',
        'pipe:1',
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
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
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new Error(`ffmpeg exited with ${code ?? signal}: ${stderr.lines().join(' | ')}`));
    });
    // EPIPE when ffmpeg dies early is reported through 'close'.
    child.stdin.on('error', () => undefined);
    child.stdin.end(matroska);
  });
}
