import { expect, test } from '@playwright/test';
import { register as globalRegistry } from 'prom-client';
import { AgentMetrics } from '../../../agent/ops/metrics.js';

/** The sample lines of one metric family from the text exposition. */
function samples(text: string, name: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
}

test('typed methods land on labelled series of a private registry, per channel', async () => {
  const metrics = new AgentMetrics({ defaultMetrics: false });
  const a = metrics.channel('cam-a');
  const b = metrics.channel('cam-b');
  expect(metrics.channel('cam-a')).toBe(a);
  a.frameAccepted('video', 1000);
  a.frameAccepted('video', 500);
  a.frameAccepted('audio', 80);
  b.frameAccepted('video', 7);
  a.dropped('seq_gap', 'video', 3);
  a.dropped('queue_overflow', 'audio');
  a.dropped('seq_gap', 'video', 0);
  a.dropped('seq_gap', 'video', Number.NaN);
  a.gap('video', 1.5);
  a.gap('video', 0.5);
  a.keyFrameInterval(2);
  a.keyFrameInterval(7);
  a.keyFrameInterval(1);
  a.fragment('acked');
  a.fragment('persisted');
  a.fragment('failed');
  a.reconnect('go_away');
  a.childRestart('gst');
  a.childRestart('gst');
  a.bridgeRejected('malformed_frame', 4);
  a.bridgeLatency(3);
  a.bridgeLatency(700);
  a.queueDepth(12, 34_000);
  a.credentialExpiry(new Date(1_900_000_000_000));
  b.credentialExpiry(undefined);
  a.credentialRefreshFailed();
  a.credentialRefreshFailed();
  a.setUp(true);
  a.setReadiness(false, { signaling: true, peer: false });

  const text = await metrics.render();
  expect(samples(text, 'kvs_agent_frames_total').sort()).toEqual([
    'kvs_agent_frames_total{channel="cam-a",kind="audio"} 1',
    'kvs_agent_frames_total{channel="cam-a",kind="video"} 2',
    'kvs_agent_frames_total{channel="cam-b",kind="video"} 1',
  ]);
  expect(text).toContain('kvs_agent_frame_bytes_total{channel="cam-a",kind="video"} 1500');
  expect(samples(text, 'kvs_agent_frames_dropped_total').sort()).toEqual([
    'kvs_agent_frames_dropped_total{channel="cam-a",kind="audio",cause="queue_overflow"} 1',
    'kvs_agent_frames_dropped_total{channel="cam-a",kind="video",cause="seq_gap"} 3',
  ]);
  expect(text).toContain('kvs_agent_gaps_total{channel="cam-a",kind="video"} 2');
  expect(text).toContain('kvs_agent_gap_seconds_total{channel="cam-a",kind="video"} 2');
  expect(text).toContain('kvs_agent_keyframe_interval_last_seconds{channel="cam-a"} 1');
  expect(text).toContain('kvs_agent_keyframe_interval_max_seconds{channel="cam-a"} 7');
  expect(text).toContain('kvs_agent_keyframe_interval_seconds_count{channel="cam-a"} 3');
  expect(text).toContain('kvs_agent_fragments_total{channel="cam-a",state="persisted"} 1');
  expect(text).toContain('kvs_agent_reconnects_total{channel="cam-a",cause="go_away"} 1');
  expect(text).toContain('kvs_agent_child_restarts_total{channel="cam-a",child="gst"} 2');
  expect(text).toContain('kvs_agent_bridge_rejected_total{channel="cam-a",reason="malformed_frame"} 4');
  expect(text).toContain('kvs_agent_bridge_latency_ms_bucket{le="5",channel="cam-a"} 1');
  expect(text).toContain('kvs_agent_bridge_latency_ms_bucket{le="500",channel="cam-a"} 1');
  expect(text).toContain('kvs_agent_bridge_latency_ms_bucket{le="+Inf",channel="cam-a"} 2');
  expect(text).toContain('kvs_agent_queue_frames{channel="cam-a"} 12');
  expect(text).toContain('kvs_agent_queue_bytes{channel="cam-a"} 34000');
  expect(text).toContain('kvs_agent_credential_expiry_timestamp_seconds{channel="cam-a"} 1900000000');
  expect(text).toContain('kvs_agent_credential_expiry_timestamp_seconds{channel="cam-b"} 0');
  expect(samples(text, 'kvs_agent_credential_refresh_failures_total')).toEqual([
    'kvs_agent_credential_refresh_failures_total{channel="cam-a"} 2',
  ]);
  expect(text).toContain('kvs_agent_up{channel="cam-a"} 1');
  expect(text).toContain('kvs_agent_ready{channel="cam-a"} 0');
  expect(text).toContain('kvs_agent_ready_check{channel="cam-a",check="peer"} 0');
  expect(text).toContain('kvs_agent_ready_check{channel="cam-a",check="signaling"} 1');
  // Every agent series carries the channel label.
  for (const line of text.split('\n').filter((l) => l.startsWith('kvs_agent_'))) {
    expect(line).toContain('channel="');
  }
  expect(await globalRegistry.metrics()).not.toContain('kvs_agent_');
});

test('two instances (two tests, two agents) do not collide; default process metrics are on the private registry', async () => {
  const one = new AgentMetrics();
  const two = new AgentMetrics();
  one.channel('c').frameAccepted('video', 1);
  const text = await one.render();
  expect(text).toContain('process_cpu_user_seconds_total');
  expect(text).toContain('nodejs_heap_size_used_bytes');
  expect(await two.render()).not.toContain('kvs_agent_frames_total{');
  expect(one.contentType).toContain('text/plain');
});
