import { ffmpegPipe } from './ffmpegPipe.js';

/**
 * Remuxes Matroska to fragmented MP4 with `ffmpeg -c copy` (no re-encoding). ffmpeg drops the producer's
 * epoch offset (timestamps start at 0), as KVS clips do. `delay_moov` writes the moov after the first
 * fragment, so that its edit lists keep each track's start: with `empty_moov` alone every track starts at 0,
 * and a clip whose audio starts 34 ms after its video played 34 ms out of sync (measured through kvssink).
 */
export function remuxToMp4(
  matroska: Buffer,
  options: { ffmpegPath: string; timeoutMs: number },
): Promise<Buffer> {
  return ffmpegPipe(
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
      'frag_keyframe+empty_moov+default_base_moof+delay_moov',
      'pipe:1',
    ],
    matroska,
    options,
  );
}
