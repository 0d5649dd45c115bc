import type { FragmentRecord } from './fragmentStore.js';
import type { HlsSession, TimelineEntry } from './hlsSessions.js';

export const VIDEO_TRACK = 1;
export const AUDIO_TRACK = 2;

type StoredTrack = FragmentRecord['tracks'][number];

/** RFC 6381 codec string of a stored track: `avc1.PPCCLL` from the avcC, `mp4a.40.<object type>` from the ASC. */
export function codecString(track: StoredTrack): string | undefined {
  const cpd = track.codecPrivateHex ? Buffer.from(track.codecPrivateHex, 'hex') : undefined;
  if (track.codecId === 'V_MPEG4/ISO/AVC') {
    if (!cpd || cpd.length < 4 || cpd[0] !== 1) return undefined;
    return `avc1.${cpd.subarray(1, 4).toString('hex')}`;
  }
  if (track.codecId.startsWith('A_AAC')) {
    const objectType = cpd && cpd.length >= 2 ? (cpd[0] ?? 0) >> 3 : 2;
    return `mp4a.40.${objectType}`;
  }
  return undefined;
}

export const videoTrackOf = (r: FragmentRecord): StoredTrack | undefined =>
  r.tracks.find((t) => t.type === 1 && t.codecId === 'V_MPEG4/ISO/AVC');
export const audioTrackOf = (r: FragmentRecord): StoredTrack | undefined =>
  r.tracks.find((t) => t.type === 2 && t.codecId.startsWith('A_AAC'));

const url = (file: string, params: Record<string, string | number>): string =>
  `${file}?${Object.entries(params)
    .map(([k, v]) => `${k}=${encodeURIComponent(String(v))}`)
    .join('&')}`;

/**
 * GetHLSMasterPlaylist. fMP4 sessions get one media playlist per track (video, and audio as an EXT-X-MEDIA
 * rendition), as KVS serves them; MPEG-TS sessions one playlist of muxed segments. CODECS, RESOLUTION and
 * BANDWIDTH come from the listed fragments (peak bit rate of a fragment).
 */
export function masterPlaylist(session: HlsSession): string {
  const entries = session.timeline;
  const first = entries[0]?.record;
  const video = first && videoTrackOf(first);
  const audio = first && audioTrackOf(first);
  const codecs = [video && codecString(video), audio && codecString(audio)].filter(
    (c): c is string => c !== undefined,
  );
  const peak = Math.max(
    1,
    ...entries.map((e) => Math.round((e.record.sizeBytes * 8 * 1000) / Math.max(e.record.durationMs, 1))),
  );
  // The largest picture of the session: a player sizes its buffers and picks renditions by it.
  const largest = entries
    .map((e) => videoTrackOf(e.record))
    .reduce<StoredTrack | undefined>(
      (best, t) =>
        (t?.pixelWidth ?? 0) * (t?.pixelHeight ?? 0) > (best?.pixelWidth ?? 0) * (best?.pixelHeight ?? 0)
          ? t
          : best,
      undefined,
    );
  const resolution =
    largest?.pixelWidth && largest.pixelHeight
      ? `,RESOLUTION=${largest.pixelWidth}x${largest.pixelHeight}`
      : '';
  const token = session.token;
  const lines = ['#EXTM3U'];
  if (session.settings.container === 'MPEG_TS') {
    lines.push('#EXT-X-VERSION:3', '#EXT-X-INDEPENDENT-SEGMENTS');
    lines.push(`#EXT-X-STREAM-INF:BANDWIDTH=${peak},CODECS="${codecs.join(',')}"${resolution}`);
    lines.push(url('getHLSMediaPlaylist.m3u8', { SessionToken: token }));
  } else {
    lines.push('#EXT-X-VERSION:7', '#EXT-X-INDEPENDENT-SEGMENTS');
    let audioGroup = '';
    if (audio) {
      audioGroup = ',AUDIO="audio"';
      const uri = url('getHLSMediaPlaylist.m3u8', { SessionToken: token, TrackNumber: AUDIO_TRACK });
      lines.push(
        `#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="audio",DEFAULT=YES,AUTOSELECT=YES,URI="${uri}"`,
      );
    }
    lines.push(`#EXT-X-STREAM-INF:BANDWIDTH=${peak},CODECS="${codecs.join(',')}"${resolution}${audioGroup}`);
    lines.push(
      url('getHLSMediaPlaylist.m3u8', {
        SessionToken: token,
        TrackNumber: video ? VIDEO_TRACK : AUDIO_TRACK,
      }),
    );
  }
  return `${lines.join('\n')}\n`;
}

/**
 * GetHLSMediaPlaylist for one track (fMP4) or the muxed stream (MPEG-TS): a segment per KVS fragment, an
 * EXT-X-MAP at the start and wherever the codec private data changes (always with an EXT-X-DISCONTINUITY),
 * EXT-X-PROGRAM-DATE-TIME with DisplayFragmentTimestamp ALWAYS, ENDLIST once the session is complete.
 */
export function mediaPlaylist(session: HlsSession, track: number | undefined, complete: boolean): string {
  const window = session.window();
  const firstEntry = window[0];
  const ts = session.settings.container === 'MPEG_TS';
  const targetDuration = Math.max(1, ...window.map((e) => Math.ceil(segmentSeconds(e))));
  const lines = [
    '#EXTM3U',
    `#EXT-X-VERSION:${ts ? 3 : 7}`,
    `#EXT-X-TARGETDURATION:${targetDuration}`,
    `#EXT-X-MEDIA-SEQUENCE:${firstEntry?.sequence ?? session.timeline.length}`,
  ];
  if (firstEntry) lines.push(`#EXT-X-DISCONTINUITY-SEQUENCE:${session.discontinuitiesBefore(firstEntry)}`);
  if (session.settings.playbackMode === 'ON_DEMAND') lines.push('#EXT-X-PLAYLIST-TYPE:VOD');
  lines.push('#EXT-X-INDEPENDENT-SEGMENTS');
  let initShown: number | undefined;
  const token = session.token;
  const trackParams: Record<string, number> = track === undefined ? {} : { TrackNumber: track };
  for (const entry of window) {
    if (entry.discontinuity) lines.push('#EXT-X-DISCONTINUITY');
    if (!ts && entry.initIndex !== initShown) {
      const init = url('getMP4InitFragment.mp4', {
        SessionToken: token,
        ...trackParams,
        SequenceNumber: entry.initIndex,
      });
      lines.push(`#EXT-X-MAP:URI="${init}"`);
      initShown = entry.initIndex;
    }
    if (session.settings.displayFragmentTimestamp) {
      lines.push(`#EXT-X-PROGRAM-DATE-TIME:${new Date(entry.timestampMs).toISOString()}`);
    }
    lines.push(`#EXTINF:${segmentSeconds(entry).toFixed(3)},`);
    lines.push(
      ts
        ? url('getTSFragment.ts', { FragmentNumber: entry.record.fragmentNumber, SessionToken: token })
        : url('getMP4MediaFragment.mp4', {
            FragmentNumber: entry.record.fragmentNumber,
            SessionToken: token,
            ...trackParams,
          }),
    );
  }
  if (complete) lines.push('#EXT-X-ENDLIST');
  return `${lines.join('\n')}\n`;
}

function segmentSeconds(entry: TimelineEntry): number {
  return Math.max(entry.record.durationMs, 1) / 1000;
}
