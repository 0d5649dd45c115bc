import { execFile } from 'node:child_process';

/**
 * Whether GStreamer can load kvssink here (`gst-inspect-1.0 kvssink`). kvssink is not packaged by Debian:
 * the Docker image builds it; elsewhere it is found through GST_PLUGIN_PATH when someone built it.
 */
export function kvssinkAvailable(): Promise<{ available: boolean; reason: string }> {
  return new Promise((resolve) => {
    execFile('gst-inspect-1.0', ['kvssink'], { timeout: 30_000 }, (err) => {
      resolve(
        err
          ? {
              available: false,
              reason:
                'kvssink is not installed (gst-inspect-1.0 kvssink failed); it is built in the Docker image, ' +
                'or point GST_PLUGIN_PATH at a local build',
            }
          : { available: true, reason: 'gst-inspect-1.0 kvssink found it' },
      );
    });
  });
}
