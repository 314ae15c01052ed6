// SPDX-License-Identifier: Apache-2.0
/** Request builders for tests: a Request as an NSC sends it. */
import { ConnectionSchema, create, type NetworkServiceRequest, NetworkServiceRequestSchema } from "../../api/index.js";
import { CallContext } from "../core/context.js";

export interface NscRequestOptions {
  /** Connection labels. @default {} */
  labels?: Record<string, string>;
  /** Ask for this endpoint by name. @default "" (any) */
  endpoint?: string;
}

/** A Request for `networkService` on connection `id`, with no path yet (the client chain adds it). */
export function nscRequest(networkService: string, id: string, options: NscRequestOptions = {}): NetworkServiceRequest {
  return create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, {
      id,
      networkService,
      labels: options.labels ?? {},
      networkServiceEndpointName: options.endpoint ?? "",
    }),
  });
}

/** A root context with a deadline `ms` from now (a test call never hangs). */
export const deadlineContext = (ms = 10_000): CallContext => CallContext.create({ deadline: Date.now() + ms });
