import { ffmpegPipe } from './ffmpegPipe.js';

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
  return ffmpegPipe(args, matroska, options).then(
    (image) => {
      if (image.length === 0) throw new ImageExtractionError('ffmpeg wrote no image');
      return image;
    },
    (err: unknown) => {
      throw new ImageExtractionError(err instanceof Error ? err.message : String(err), { cause: err });
    },
  );
}
