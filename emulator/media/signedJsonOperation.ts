import express, { type Request, type Response, type Router } from 'express';
import type { Logger } from 'pino';
import { z } from 'zod';
import { AwsError, accessDenied, invalidArgument, sendAwsError } from '../awsErrors.js';
import type { VerifyRequest } from './mediaRouter.js';

const JSON_BODY_LIMIT = 1024 * 1024;

/**
 * Registers a SigV4-signed REST-JSON operation (`POST <path>`) on a router: the raw body is verified, parsed
 * and validated with `schema`; an `AwsError` becomes its AWS error shape, anything else a logged 500.
 */
export function signedJsonOperation<S extends z.ZodType>(
  router: Router,
  options: { verify: VerifyRequest; logger: Logger; count: (name: string, by?: number) => void },
  path: string,
  schema: S,
  run: (input: z.infer<S>, res: Response, req: Request) => Promise<void>,
): void {
  const op = path.slice(1);
  router.post(path, express.raw({ type: () => true, limit: JSON_BODY_LIMIT }), (req, res) => {
    void (async () => {
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const problem = await options.verify(req, { emptyPayloadHash: false, body });
      if (problem !== undefined) throw accessDenied(problem);
      let json: unknown;
      try {
        json = body.length === 0 ? {} : JSON.parse(body.toString('utf8'));
      } catch {
        throw invalidArgument('The request body is not valid JSON');
      }
      const parsed = schema.safeParse(json);
      if (!parsed.success) throw invalidArgument(z.prettifyError(parsed.error));
      options.count(`${op}.requests`);
      await run(parsed.data, res, req);
    })().catch((err: unknown) => sendOperationError(res, op, err, options));
  });
}

/** Answers a failed request in the AWS error shape; non-AWS errors are logged and become InternalFailure. */
export function sendOperationError(
  res: Response,
  op: string,
  err: unknown,
  options: { logger: Logger; count: (name: string, by?: number) => void },
): void {
  if (err instanceof AwsError) {
    options.count(`${op}.rejected.${err.type}`);
    sendAwsError(res, err);
    return;
  }
  options.logger.error({ op, err }, 'media request failed');
  options.count(`${op}.internalError`);
  if (res.headersSent) res.destroy();
  else sendAwsError(res, new AwsError(500, 'InternalFailure', 'internal error'));
}
