import { spawn } from 'node:child_process';
import { RingBuffer, lineSplitter } from '../../agent/log.js';

export type ImageFormat = 'JPEG' | 'PNG';

export interface ImageOptions {
  format: ImageFormat;
  /** GetImages JPEGQuality, 1 (smallest) to 100 (best). */
  jpegQuality: number;
  /** Both: stretched to this size; height only: width follows the picture's aspect ratio. */
  width: number | undefined;
  height: number | undefined;
  ffmpegPath: string;
  timeoutMs: number;
}

export class ImageExtractionError extends Error {
  readonly code = 'IMAGE_EXTRACTION_FAILED';
}

/** ffmpeg's mjpeg qscale runs from 2 (best) to 31 (smallest); JPEGQuality 1..100 maps onto it linearly. */
export function jpegQscale(quality: number): number {
  return Math.round(31 - ((Math.min(Math.max(quality, 1), 100) - 1) * 29) / 99);
}

/**
 * Decodes the first video frame of a stored fragment (its key frame: fragments start on one) and encodes it
 * as one JPEG or PNG image.
 */
export function extractKeyFrameImage(matroska: Buffer, options: ImageOptions): Promise<Buffer> {
  const scale =
    options.width !== undefined && options.height !== undefined
      ? `scale=${options.width}:${options.height}`
      : options.height !== undefined
        ? `scale=-1:${options.height}`
        : undefined;
  const encoder =
    options.format === 'JPEG'
      ? ['-c:v', 'mjpeg', '-pix_fmt', 'yuvj420p', '-q:v', String(jpegQscale(options.jpegQuality))]
      : ['-c:v', 'png', '-pix_fmt', 'rgb24'];
  const args = [
    '-hide_banner',
    '-nostdin',
    '-v',
    'error',
    '-f',
    'matroska',
    '-i',
    'pipe:0',
    '-map',
    '0:v:0',
    '-frames:v',
    '1',
    ...(scale ? ['-vf', scale] : []),
    ...encoder,
    '-f',
    'image2pipe',
    'pipe:1',
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(options.ffmpegPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
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
      reject(new ImageExtractionError(`ffmpeg could not start: ${err.message}`, { cause: err }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const image = Buffer.concat(out);
      if (code === 0 && image.length > 0) resolve(image);
      else
        reject(
          new ImageExtractionError(`ffmpeg exited with ${code ?? signal}: ${stderr.lines().join(' | ')}`),
        );
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(matroska);
  });
}
