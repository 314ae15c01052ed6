// SPDX-License-Identifier: Apache-2.0
/**
 * The one check every element that reads `request.connection` makes: a Request without a
 * connection is a caller's mistake, answered with InvalidArgument before anything changes.
 */
import type { Connection } from "../../api/gen/connection_pb.js";
import type { NetworkServiceRequest } from "../../api/gen/networkservice_pb.js";
import { Code, NsmError } from "./errors.js";

/** The request's connection; throws NsmError InvalidArgument "request has no connection" without one. */
export function requestConnection(req: NetworkServiceRequest): Connection {
  if (!req.connection) throw new NsmError("request has no connection", Code.InvalidArgument);
  return req.connection;
}
