// SPDX-License-Identifier: Apache-2.0
/**
 * The vL3 endpoint's side of the IPAM stream (upstream cmd-nse-vl3-vpp's prefix listener): keeps
 * one `ManagePrefixes` stream open to the IPAM server, asks for a block (its previous one again
 * after a reconnect, so the endpoint keeps its prefix across an IPAM restart) and reports every
 * new block. The stream is reopened `retryMs` after it breaks, until `signal` aborts.
 * A status the server ends the stream with (ResourceExhausted…) is reported through `onError`
 * and retried like a break.
 */
import * as grpc from "@grpc/grpc-js";
import { IPAM, type PrefixRequest, PrefixRequestSchema, type PrefixResponse, Type } from "../../../api/gen/ipam_pb.js";
import { create } from "../../../api/index.js";
import { sleep } from "../../core/context.js";
import { NsmError, nsmErrorFromGrpc } from "../../core/errors.js";
import { grpcDefinition } from "../../grpc/service.js";

/** Options of {@link watchPrefix}. */
export interface PrefixWatchOptions {
  /** A channel to the IPAM server (the caller owns it). */
  readonly channel: grpc.Client;
  /** Called with each block the server hands out that differs from the previous one. */
  readonly onPrefix: (prefix: string) => void;
  /** Called when a stream fails (then it is reopened). */
  readonly onError?: (err: NsmError) => void;
  /** Prefixes the block must not overlap. @default none */
  readonly excludePrefixes?: readonly string[];
  /** Ends the watch (the stream is cancelled). */
  readonly signal: AbortSignal;
  /** Delay before reopening a broken stream. @default 200 */
  readonly retryMs?: number;
}

const method = grpcDefinition(IPAM).managePrefixes!;

/** One stream: resolves when it ends (rejects with its status). */
function oneStream(o: PrefixWatchOptions, previous: string, got: (p: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const call = o.channel.makeBidiStreamRequest<PrefixRequest, PrefixResponse>(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      new grpc.Metadata(),
      {},
    );
    const cancel = () => call.cancel();
    o.signal.addEventListener("abort", cancel, { once: true });
    call.on("data", (res: PrefixResponse) => got(res.prefix));
    call.on("error", (err: grpc.ServiceError) => {
      o.signal.removeEventListener("abort", cancel);
      reject(nsmErrorFromGrpc(err));
    });
    call.on("end", () => {
      o.signal.removeEventListener("abort", cancel);
      resolve();
    });
    call.write(
      create(PrefixRequestSchema, {
        type: Type.ALLOCATE,
        prefix: previous,
        excludePrefixes: [...(o.excludePrefixes ?? [])],
      }),
    );
  });
}

/** Keeps the stream open until `signal` aborts; resolves then. */
export async function watchPrefix(o: PrefixWatchOptions): Promise<void> {
  let previous = "";
  const got = (p: string) => {
    if (p === previous) return;
    previous = p;
    o.onPrefix(p);
  };
  while (!o.signal.aborted) {
    try {
      await oneStream(o, previous, got);
    } catch (err) {
      if (!o.signal.aborted) o.onError?.(NsmError.from(err));
    }
    try {
      await sleep(o.retryMs ?? 200, o.signal);
    } catch {
      return;
    }
  }
}
