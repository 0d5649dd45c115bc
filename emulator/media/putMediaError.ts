/** PutMedia ERROR acknowledgement ids (AWS "PutMedia" API reference, ErrorId). */
export const ErrorId = {
  readError: 4000,
  fragmentSizeLimit: 4001,
  fragmentDurationLimit: 4002,
  connectionDurationLimit: 4003,
  fragmentTimecodeLesserThanPrevious: 4004,
  invalidMkvData: 4006,
  invalidProducerTimestamp: 4007,
  streamNotActive: 4008,
  fragmentMetadataLimit: 4009,
  trackNumberMismatch: 4010,
  framesMissingForTrack: 4011,
  moreThanAllowedTracks: 4012,
  internalError: 5000,
  archivalError: 5001,
} as const;

export type ErrorIdValue = (typeof ErrorId)[keyof typeof ErrorId];

/** A violation of a PutMedia rule: becomes an ERROR ack with `errorId` and ends the request. */
export class PutMediaError extends Error {
  constructor(
    readonly errorId: ErrorIdValue,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PutMediaError';
  }
}
