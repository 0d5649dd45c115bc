import { expect, test } from '@playwright/test';
import { LocalRecordings, segmentStartMs } from '../../../emulator/player/localRecordings.js';

test('file-sink segment names give their start; the playlist lists them with a discontinuity between files', () => {
  expect(segmentStartMs('webrtc-kvs-agent-stream_20261202T184331.641Z.ts')).toBe(
    Date.parse('2026-12-02T18:43:31.641Z'),
  );
  expect(segmentStartMs('cam_20261202T184331Z.ts')).toBe(Date.parse('2026-12-02T18:43:31Z'));
  expect(segmentStartMs('clip.ts')).toBeUndefined();
  const segments = [
    { file: 's_20261202T100000.000Z.ts', startMs: Date.parse('2026-12-02T10:00:00Z'), durationS: 10.5 },
    { file: 's_20261202T100011.000Z.ts', startMs: Date.parse('2026-12-02T10:00:11Z'), durationS: 4 },
  ];
  const playlist = LocalRecordings.playlist(segments, (f) => `seg?file=${f}`).split('\n');
  expect(playlist).toContain('#EXT-X-TARGETDURATION:11');
  expect(playlist.filter((l) => l === '#EXT-X-DISCONTINUITY')).toHaveLength(1);
  expect(playlist).toContain('#EXT-X-ENDLIST');
  expect(playlist.filter((l) => l.startsWith('seg?file='))).toEqual(
    segments.map((s) => `seg?file=${s.file}`),
  );
  // 10.5 s of media in an 11 s slot: a 500 ms hole between the runs.
  expect(LocalRecordings.timeline(segments).gaps).toEqual([
    { fromMs: Date.parse('2026-12-02T10:00:10.500Z'), toMs: Date.parse('2026-12-02T10:00:11Z') },
  ]);
});
