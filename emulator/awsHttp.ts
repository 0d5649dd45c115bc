import { Router, type Request } from 'express';
import type { z } from 'zod';
import { AwsError, invalidArgument, sendAwsError } from './awsErrors.js';

/** A REST-JSON operation: validated input in, JSON-serialisable output out; throws `AwsError` to fail. */
export type Operation = (input: unknown, request: Request) => unknown;

/**
 * Mounts `POST /<path>` for each operation. The body arrives as raw bytes (SigV4 hashed them); it is parsed
 * here so that malformed JSON becomes a 400 in the AWS shape instead of an exception.
 */
export function operationRouter(operations: Record<string, Operation>): Router {
  const router = Router();
  for (const [path, operation] of Object.entries(operations)) {
    router.post(path, async (req, res) => {
      try {
        const output = await operation(parseJsonBody(req), req);
        res
          .status(200)
          .type('application/json')
          .send(JSON.stringify(output ?? {}));
      } catch (err) {
        sendAwsError(res, toAwsError(err));
      }
    });
  }
  return router;
}

export function toAwsError(err: unknown): AwsError {
  if (err instanceof AwsError) return err;
  return new AwsError(500, 'InternalFailure', err instanceof Error ? err.message : String(err));
}

function parseJsonBody(req: Request): unknown {
  const raw: unknown = req.body;
  const text = Buffer.isBuffer(raw) ? raw.toString('utf8') : '';
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new AwsError(400, 'SerializationException', 'Request body is not valid JSON');
  }
}

/** zod → InvalidArgumentException with the first issue's path, as AWS names the offending member. */
export function validate<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const where = issue?.path.length ? issue.path.join('.') : 'request';
  throw invalidArgument(
    `1 validation error detected: Value at '${where}' failed to satisfy constraint: ${issue?.message ?? 'invalid'}`,
  );
}

/** AWS bodies carry timestamps as epoch seconds. */
export const epochSeconds = (date: Date): number => date.getTime() / 1000;
