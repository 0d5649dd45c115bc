import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createApp } from '../lib/app.js';
import { InfraConfigError } from '../lib/config.js';

/**
 * `npm run synth [-- -c key=value …]`: prints the stack's CloudFormation template (JSON) without the CDK CLI —
 * offline, no credentials, no cdk.out left behind. Same app and checks as `cdk synth`; a summary of the
 * resources goes to stderr.
 */
const { values } = parseArgs({
  options: { context: { type: 'string', short: 'c', multiple: true } },
  strict: true,
});
const context: Record<string, string> = {};
for (const pair of values.context ?? []) {
  const at = pair.indexOf('=');
  if (at <= 0) throw new Error(`-c ${pair}: expected key=value`);
  context[pair.slice(0, at)] = pair.slice(at + 1);
}
const outdir = mkdtempSync(join(tmpdir(), 'webrtc-kvs-agent-synth-'));
try {
  const { app, stack } = createApp({ outdir, context });
  const template = app.synth().getStackByName(stack.stackName).template as {
    Resources?: Record<string, { Type: string }>;
  };
  const json = JSON.stringify(template, null, 2);
  process.stdout.write(`${json}\n`);
  const types = new Map<string, number>();
  for (const r of Object.values(template.Resources ?? {})) types.set(r.Type, (types.get(r.Type) ?? 0) + 1);
  const lines = [...types].sort(([a], [b]) => a.localeCompare(b)).map(([t, n]) => `  ${n} ${t}`);
  process.stderr.write(
    `${stack.stackName} (${stack.region}): ${[...types.values()].reduce((a, b) => a + b, 0)} resources, ${json.length} bytes\n${lines.join('\n')}\n`,
  );
} catch (err) {
  // A config mistake is the user's to fix: say which field, without a stack trace (exit 2, like the agent).
  if (!(err instanceof InfraConfigError)) throw err;
  process.stderr.write(`${err.message}\n`);
  process.exitCode = 2;
} finally {
  rmSync(outdir, { recursive: true, force: true });
}
