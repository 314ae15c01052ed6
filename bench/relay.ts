// SPDX-License-Identifier: Apache-2.0
/**
 * One process of the transport floor (bench:scale's `hops`): a bare grpc-js unary method that
 * passes the bytes it receives to the next relay and answers with that relay's reply, or answers
 * with them itself when it is the last. It uses the same credentials as the roles (mTLS with an
 * X.509-SVID from the Workload API, or insecure with NSM_INSECURE=true) and nothing else: no
 * chain, no protobuf, no tokens.
 *
 * Usage (bench/scale.ts starts it): node --import tsx bench/relay.ts LISTEN_URL [NEXT_URL]
 */
import * as grpc from "@grpc/grpc-js";
import { dialChannel } from "../src/sdk/grpc/dial.js";
import { createSecurity } from "../src/security/index.js";

/** The method every relay serves (bytes in, bytes out); bench/scale.ts calls it by this path. */
const RELAY_PATH = "/bench.Relay/Hop";

const bytes = (b: Buffer) => b;

/** The relay's service definition: one unary method whose messages are raw bytes. */
const relayService: grpc.ServiceDefinition = {
  hop: {
    path: RELAY_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: bytes,
    requestDeserialize: bytes,
    responseSerialize: bytes,
    responseDeserialize: bytes,
  },
};

async function main(listen: string, next: string | undefined): Promise<void> {
  const sec = await createSecurity({
    socket: process.env.SPIFFE_ENDPOINT_SOCKET,
    insecure: process.env.NSM_INSECURE === "true",
  });
  const onward = next ? dialChannel(next, sec.dialOptions()) : undefined;
  const server = new grpc.Server();
  server.addService(relayService, {
    hop: (call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => {
      if (!onward) return done(null, call.request);
      onward.makeUnaryRequest(RELAY_PATH, bytes, bytes, call.request, (err, reply) => done(err, reply));
    },
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(listen, sec.serverCredentials(), (err) => (err ? reject(err) : resolve())),
  );
  process.on("SIGTERM", () => process.exit(0));
}

if (!process.argv[2]) throw new Error("usage: node --import tsx bench/relay.ts LISTEN_URL [NEXT_URL]");
await main(process.argv[2], process.argv[3]);
