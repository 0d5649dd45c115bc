import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { USER_AGENT } from '../version.js';
import type { SinkSpec } from './pipeline.js';

/**
 * kvssink's properties, chosen rather than left to defaults:
 * - `key-frame-fragmentation=true`: a fragment per key frame; the page asks for a key frame every
 *   `--keyframe-interval-ms` (2 s), so fragments stay ≈ 2 s (KVS refuses > 10 s: 4002).
 * - `allow-create-stream=false`: the agent provisions the stream itself (retention, media type) and says
 *   clearly when it cannot; kvssink would silently create one with its own 2 h default.
 * - `restart-on-error=true`, `streaming-type=0` (realtime), `connection-staleness=60`: kvssink reconnects
 *   and replays unacknowledged fragments on its own.
 * - `storage-size=128` MB and `buffer-duration=120` s: room for two minutes of a 720p call while KVS is
 *   unreachable; `framerate=30` sizes its buffers for what WebRTC delivers.
 * - `stop-stream-timeout=20`: at EOS kvssink waits for the last fragment's PERSISTED ack at most 20 s, inside
 *   Fargate's default 30 s between SIGTERM and SIGKILL.
 * - `credential-path`: the only way credentials reach kvssink (see KvssinkCredentialFile).
 * - `log-config`: its log4cplus output goes to stdout at INFO, line by line into the agent's log.
 * - `user-agent`: names this project in KVS's request logs.
 */
export function kvssinkSpec(options: {
  streamName: string;
  region: string;
  credentialPath: string;
  logConfigPath: string;
}): SinkSpec {
  return {
    kind: 'kvssink',
    streamName: options.streamName,
    awsRegion: options.region,
    properties: {
      'credential-path': options.credentialPath,
      'log-config': options.logConfigPath,
      'key-frame-fragmentation': true,
      'allow-create-stream': false,
      'restart-on-error': true,
      'streaming-type': 0,
      'connection-staleness': 60,
      'storage-size': 128,
      'buffer-duration': 120,
      framerate: 30,
      'stop-stream-timeout': 20,
      'user-agent': USER_AGENT,
    },
  };
}

/**
 * The child's environment: the region (kvssink reads AWS_DEFAULT_REGION) and, for the emulator, the
 * control-plane endpoint. Deliberately no AWS_ACCESS_KEY_ID: kvssink would prefer static keys over the
 * credential file and never refresh them.
 */
export function kvssinkEnv(options: {
  region: string;
  endpoint?: string | undefined;
}): Record<string, string> {
  return {
    AWS_DEFAULT_REGION: options.region,
    ...(options.endpoint ? { CONTROL_PLANE_URI: options.endpoint } : {}),
  };
}

/** Writes kvssink's log4cplus configuration (stdout, INFO) into `dir`; returns its path. */
export async function writeKvssinkLogConfig(dir: string): Promise<string> {
  const path = join(dir, 'kvs_log_configuration');
  await writeFile(
    path,
    [
      'log4cplus.rootLogger=INFO, KvsConsole',
      'log4cplus.appender.KvsConsole=log4cplus::ConsoleAppender',
      'log4cplus.appender.KvsConsole.layout=log4cplus::PatternLayout',
      'log4cplus.appender.KvsConsole.layout.ConversionPattern=%-5p %m%n',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  return path;
}
