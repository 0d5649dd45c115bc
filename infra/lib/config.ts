import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';

/**
 * The stack's one configuration, validated once: from CDK context (`cdk.json` "context", or `-c key=value` on
 * the command line) and optionally a JSON file named by `-c configFile=path.json`; context wins over the file,
 * the file over the defaults. Values from `-c` arrive as strings, so numbers and booleans are coerced.
 */

/** CloudWatch Logs accepts only these retention periods (days). */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

/** Fargate's CPU units → allowed memory (MiB), Linux. */
export const FARGATE_MEMORY: Readonly<Record<number, readonly number[]>> = {
  256: [512, 1024, 2048],
  512: range(1024, 4096, 1024),
  1024: range(2048, 8192, 1024),
  2048: range(4096, 16384, 1024),
  4096: range(8192, 30720, 1024),
  8192: range(16384, 61440, 4096),
  16384: range(32768, 122880, 8192),
};

function range(from: number, to: number, step: number): number[] {
  const out: number[] = [];
  for (let v = from; v <= to; v += step) out.push(v);
  return out;
}

const bool = z.preprocess(
  (v) => {
    if (typeof v !== 'string') return v;
    const s = v.trim().toLowerCase();
    return s === 'true' ? true : s === 'false' ? false : v;
  },
  z.boolean({ error: 'must be true or false' }),
);

const int = (min: number, max: number) =>
  z.coerce
    .number({ error: 'must be a number' })
    .int({ error: 'must be a whole number' })
    .min(min, { error: `must be at least ${min}` })
    .max(max, { error: `must be at most ${max}` });

/** KVS channel and stream names (the agent's config accepts the same set). */
const kvsName = z.string().regex(/^[a-zA-Z0-9_.-]{1,256}$/, {
  error: 'must be 1-256 characters of a-z A-Z 0-9 _ . -',
});

const schema = z
  .object({
    stackName: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9-]{0,127}$/, { error: 'must be a CloudFormation stack name' })
      .default('WebrtcKvsAgent'),
    /** Deployed to this region; the account is the CLI's (CDK_DEFAULT_ACCOUNT), or left to deploy time. */
    region: z
      .string()
      .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, { error: 'must look like ap-northeast-1' })
      .default('ap-northeast-1'),
    account: z
      .string()
      .regex(/^\d{12}$/, { error: 'must be a 12-digit AWS account id' })
      .optional(),
    channelName: kvsName.default('webrtc-kvs-agent-channel'),
    streamName: kvsName.default('webrtc-kvs-agent-stream'),
    /** true: the stack owns the signaling channel; false: an existing channel of that name is used. */
    createChannel: bool.default(true),
    /** true: the stack owns the stream; false: an existing stream of that name is used (the agent never creates it). */
    createStream: bool.default(true),
    /** Stream retention when the stack creates it. At least 1: with 0 KVS keeps nothing to play back. */
    retentionHours: int(1, 87_600).default(24),
    /** Fargate task size: 1 vCPU / 2 GiB — headless Chromium + GStreamer peak at ≈ 1.3 GiB and 0.13 cores at 720p. */
    cpu: int(256, 16_384).default(1024),
    memoryMiB: int(512, 122_880).default(2048),
    /** Graviton (arm64) is ≈ 20 % cheaper per vCPU-hour than x86_64. */
    architecture: z.enum(['arm64', 'x86_64'], { error: 'must be arm64 or x86_64' }).default('arm64'),
    /**
     * 0 or 1: a second task would record the same channel into the same stream at once (KVS keeps one
     * PutMedia connection per stream, the newest wins). 0 is the first-deploy state of the ECR path.
     */
    desiredCount: int(0, 1).default(1),
    /** `asset`: CDK builds the repository's Dockerfile and pushes it; `ecr`: an image already in ECR. */
    imageSource: z.enum(['asset', 'ecr'], { error: 'must be asset or ecr' }).default('asset'),
    /** ECR path: the repository (created by the stack unless createEcrRepository is false) and tag. */
    ecrRepositoryName: z
      .string()
      .regex(/^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$/, {
        error: 'must be an ECR repository name',
      })
      .default('webrtc-kvs-agent'),
    createEcrRepository: bool.default(true),
    imageTag: z
      .string()
      .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, { error: 'must be a Docker tag' })
      .default('latest'),
    /** Asset path: an optional build target of the Dockerfile (default: its last stage). */
    dockerTarget: z.string().min(1).optional(),
    logRetentionDays: z.coerce
      .number({ error: 'must be a number' })
      .refine((d) => (LOG_RETENTION_DAYS as readonly number[]).includes(d), {
        error: `must be one of ${LOG_RETENTION_DAYS.join(', ')}`,
      })
      .default(30),
    /** The agent's --stop-budget; the container's stopTimeout is 5 s more (Fargate allows at most 120 s). */
    stopBudgetSeconds: int(5, 115).default(25),
    /** The agent's --emf-interval. The alarms evaluate 1-minute periods, so at most 60. */
    emfIntervalSeconds: int(10, 60).default(60),
    logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error']).default('info'),
    /** Alarm: no video frame for this many consecutive minutes (also fires while no task runs). */
    noMediaMinutes: int(1, 60).default(5),
    /** Alarm: more child restarts (Chromium, page, GStreamer) than this within restartWindowMinutes. */
    restartThreshold: int(0, 1000).default(3),
    restartWindowMinutes: int(1, 60).default(15),
    /** Alarm actions go to an SNS topic with this e-mail subscription; none when absent. */
    alarmEmail: z.email({ error: 'must be an e-mail address' }).optional(),
    /** Keep the stream, the log group and the ECR repository when the stack is destroyed. */
    retainData: bool.default(false),
  })
  .strict()
  .superRefine((c, ctx) => {
    const allowed = FARGATE_MEMORY[c.cpu];
    if (!allowed) {
      ctx.addIssue({
        code: 'custom',
        path: ['cpu'],
        message: `must be one of ${Object.keys(FARGATE_MEMORY).join(', ')} (Fargate task sizes)`,
      });
    } else if (!allowed.includes(c.memoryMiB)) {
      ctx.addIssue({
        code: 'custom',
        path: ['memoryMiB'],
        message: `with cpu ${c.cpu} Fargate allows ${allowed[0]}-${allowed.at(-1)} MiB in steps of ${(allowed[1] ?? 0) - (allowed[0] ?? 0)}`,
      });
    }
  });

export type AgentStackConfig = Readonly<z.infer<typeof schema>>;
export type AgentStackConfigInput = z.input<typeof schema>;

/** The keys a user may set (context keys and config file keys). */
export const CONFIG_KEYS = Object.keys(schema.shape) as Array<keyof AgentStackConfig>;

export class InfraConfigError extends Error {
  override readonly name = 'InfraConfigError';
}

/** Validates raw values into the config, or throws InfraConfigError naming the field. */
export function parseConfig(raw: Readonly<Record<string, unknown>>): AgentStackConfig {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const field = issue?.path.join('.') || '(config)';
    throw new InfraConfigError(`infra config ${field}: ${issue?.message ?? 'invalid value'}`);
  }
  return Object.freeze(parsed.data);
}

/**
 * The config from CDK context: every known key that is set, over the JSON file named by `configFile` (relative
 * to the working directory). Unknown keys in the file are errors; unknown context keys are ignored, since
 * context also carries CDK's own settings.
 */
export function configFromContext(tryGetContext: (key: string) => unknown): AgentStackConfig {
  const file = tryGetContext('configFile');
  let fromFile: Record<string, unknown> = {};
  if (file !== undefined) {
    if (typeof file !== 'string') throw new InfraConfigError('infra config configFile: must be a path');
    try {
      fromFile = JSON.parse(readFileSync(resolve(file), 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new InfraConfigError(
        `infra config configFile: cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }
  const fromContext: Record<string, unknown> = {};
  for (const key of CONFIG_KEYS) {
    const v = tryGetContext(key);
    if (v !== undefined) fromContext[key] = v;
  }
  return parseConfig({ ...fromFile, ...fromContext });
}
