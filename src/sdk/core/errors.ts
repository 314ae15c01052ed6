// SPDX-License-Identifier: Apache-2.0
/**
 * One error type for the whole SDK, carrying a gRPC status code.
 *
 * Anything that leaves a chain element as an error is an {@link NsmError}; the gRPC server
 * adapter turns it into a status with the same code and the raw message as details, and the
 * client adapter turns a received status back into an NsmError ({@link nsmErrorFromGrpc}).
 */

/** gRPC status codes, with gRPC's numbers. An `as const` object rather than an enum (erasable syntax). */
export const Code = {
  OK: 0,
  Canceled: 1,
  Unknown: 2,
  InvalidArgument: 3,
  DeadlineExceeded: 4,
  NotFound: 5,
  AlreadyExists: 6,
  PermissionDenied: 7,
  ResourceExhausted: 8,
  FailedPrecondition: 9,
  Aborted: 10,
  OutOfRange: 11,
  Unimplemented: 12,
  Internal: 13,
  Unavailable: 14,
  DataLoss: 15,
  Unauthenticated: 16,
} as const;
export type Code = (typeof Code)[keyof typeof Code];

const codeNames = new Map<number, string>(Object.entries(Code).map(([k, v]) => [v, k]));

/** The gRPC name of a code as Go prints it (`PermissionDenied`), or `Code(N)` for an unknown number. */
export function codeName(code: number): string {
  return codeNames.get(code) ?? `Code(${code})`;
}

/** Optional facts of an {@link NsmError}. */
export interface NsmErrorOptions {
  /** The error that caused this one. */
  cause?: unknown;
  /** A stable literal for finer checks than the code alone, e.g. `"path-index-out-of-range"`. */
  reason?: string;
  /** Extra structured facts for logs. */
  details?: Record<string, unknown>;
}

/**
 * The one error type of the SDK: a message with a gRPC status {@link Code}. Thrown by elements,
 * it travels as that gRPC status; a gRPC error received becomes one.
 */
export class NsmError extends Error {
  override readonly name = "NsmError";
  /** The gRPC status code. */
  readonly code: Code;
  /** The message without the code prefix; this is what travels as the gRPC status details. */
  readonly rawMessage: string;
  /** See {@link NsmErrorOptions.reason}. */
  readonly reason: string | undefined;
  /** See {@link NsmErrorOptions.details}. */
  readonly details: Record<string, unknown> | undefined;

  constructor(message: string, code: Code = Code.Unknown, options: NsmErrorOptions = {}) {
    super(`[${codeName(code)}] ${message}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.rawMessage = message;
    this.reason = options.reason;
    this.details = options.details;
  }

  /**
   * Normalizes anything thrown into an NsmError. An NsmError (also one found on the `cause`
   * chain) keeps its code; anything else gets `code` and its message.
   */
  static from(err: unknown, code: Code = Code.Unknown): NsmError {
    const found = findNsmError(err);
    if (found) return found;
    if (isGrpcStatusError(err)) return nsmErrorFromGrpc(err);
    if (err instanceof Error) return new NsmError(err.message, code, { cause: err });
    return new NsmError(String(err), code);
  }

  /** The error as upstream Go tools print a gRPC status: `rpc error: code = X desc = Y`. */
  toStatusString(): string {
    return `rpc error: code = ${codeName(this.code)} desc = ${this.rawMessage}`;
  }
}

function findNsmError(err: unknown): NsmError | undefined {
  let cur: unknown = err;
  for (let depth = 0; cur !== undefined && cur !== null && depth < 16; depth++) {
    if (cur instanceof NsmError) return cur;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The shape of a grpc-js `ServiceError` (and of any `{code, details}` status object). */
export interface GrpcStatusLike {
  code: number;
  details?: string;
  message?: string;
}

function isGrpcStatusError(err: unknown): err is GrpcStatusLike {
  return (
    typeof err === "object" &&
    err !== null &&
    typeof (err as GrpcStatusLike).code === "number" &&
    typeof (err as GrpcStatusLike).details === "string"
  );
}

/** Translates a status received from a gRPC peer. The peer's details become the raw message. */
export function nsmErrorFromGrpc(status: GrpcStatusLike): NsmError {
  const code = (codeNames.has(status.code) ? status.code : Code.Unknown) as Code;
  return new NsmError(status.details || status.message || "", code, { cause: status });
}

/** Shorthands for the codes used most. */
export const invalidArgument = (msg: string, o?: NsmErrorOptions) => new NsmError(msg, Code.InvalidArgument, o);
export const notFound = (msg: string, o?: NsmErrorOptions) => new NsmError(msg, Code.NotFound, o);
export const permissionDenied = (msg: string, o?: NsmErrorOptions) => new NsmError(msg, Code.PermissionDenied, o);
export const internal = (msg: string, o?: NsmErrorOptions) => new NsmError(msg, Code.Internal, o);
export const unavailable = (msg: string, o?: NsmErrorOptions) => new NsmError(msg, Code.Unavailable, o);
