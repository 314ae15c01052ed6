// SPDX-License-Identifier: Apache-2.0
// Compose your own endpoint from the SDK's pieces: the standard endpoint chain (createEndpoint,
// through the sandbox's addEndpoint) with, in its `additional` slot, elements the product's own
// endpoints are made of, plus one of yours. It runs in one process with the in-process sandbox
// (a registry, an nsmgr and a forwarder over real gRPC; no root, no kernel), asks for a
// connection as a client would, closes it, and waits until the endpoint has been idle.
import {
  CallContext,
  ClientAddresses,
  ConnectionSchema,
  clientAddressesServer,
  create,
  createSandbox,
  kernelMechanismServer,
  mechanismsServer,
  NetworkServiceRequestSchema,
  type NetworkServiceServer,
  onIdleServer,
  point2pointIpamServer,
} from "nsm-ts/sdk";

const idleMs = Number(process.env.EXAMPLE_IDLE_MS ?? "500");
const say = (line: string) => process.stdout.write(`${line}\n`);

// Yours: tells the client which endpoint served it, in the connection's extra context.
const servedBy = (name: string): NetworkServiceServer => ({
  name: "served-by",
  async request(req, ctx, next) {
    const conn = await next.request(req, ctx);
    if (conn.context) conn.context.extraContext["served-by"] = name;
    return conn;
  },
  close: (conn, ctx, next) => next.close(conn, ctx),
});

const clients = new ClientAddresses();
let idle: () => void = () => {};
const idled = new Promise<void>((resolve) => {
  idle = resolve;
});

const sandbox = await createSandbox({ nodes: 1 });
try {
  await sandbox.registerNetworkService({ name: "composed", payload: "ETHERNET" });
  await sandbox.addEndpoint({
    name: "my-endpoint",
    networkServices: ["composed"],
    // The order is the call order: idle tracking first, then addresses, then what reads them.
    additional: [
      onIdleServer({ timeoutMs: idleMs, onIdle: idle }), // as NSM_IDLE_TIMEOUT
      point2pointIpamServer({ prefixes: ["172.16.9.0/24"] }), // as NSM_CIDR_PREFIX
      clientAddressesServer(clients), // the HTTP gateway's backend list
      servedBy("my-endpoint"),
      mechanismsServer({ KERNEL: kernelMechanismServer() }),
    ],
  });
  const client = sandbox.client({ name: "app" });
  const ctx = () => CallContext.create({ deadline: Date.now() + 10_000 });
  const request = create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, { id: "app-0", networkService: "composed" }),
  });
  const conn = await client.request(request, ctx());
  const ip = conn.context?.ipContext;
  say(`connected ${conn.id} to ${conn.networkServiceEndpointName} over ${conn.mechanism?.type}`);
  say(`client ${ip?.srcIpAddrs.join(",")} endpoint ${ip?.dstIpAddrs.join(",")}`);
  say(`served-by ${conn.context?.extraContext["served-by"]}`);
  say(`path ${conn.path?.pathSegments.map((s) => s.name).join(" > ")}`);
  say(`connected clients ${clients.list().join(",")}`);
  await client.close(conn, ctx());
  say(`closed; connected clients ${clients.list().length}`);
  await idled;
  say(`idle: no connection for ${idleMs} ms, the endpoint would stop now`);
} finally {
  await sandbox.close();
}
