import type { Response } from 'express';

/**
 * An error in the AWS REST-JSON shape: the SDK v3 deserializer takes the exception name from the
 * `x-amzn-ErrorType` header first, so the client throws the matching typed class (e.g.
 * `ResourceNotFoundException`).
 */
export class AwsError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
    this.name = type;
  }
}

export const invalidArgument = (message: string): AwsError =>
  new AwsError(400, 'InvalidArgumentException', message);
export const resourceNotFound = (message: string): AwsError =>
  new AwsError(404, 'ResourceNotFoundException', message);
export const resourceInUse = (message: string): AwsError =>
  new AwsError(400, 'ResourceInUseException', message);
export const accessDenied = (message: string): AwsError =>
  new AwsError(403, 'AccessDeniedException', message);
export const clientLimitExceeded = (message: string): AwsError =>
  new AwsError(400, 'ClientLimitExceededException', message);

/** Writes the AWS error shape: header + `{message}` body (AWS itself uses both casings; the SDK reads either). */
export function sendAwsError(res: Response, err: AwsError): void {
  if (res.headersSent) return;
  res
    .status(err.status)
    .set('x-amzn-ErrorType', err.type)
    .type('application/json')
    .send(JSON.stringify({ message: err.message }));
}
