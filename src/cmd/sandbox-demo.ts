// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm sandbox`: the control plane end to end in one process (no kernel needed): a registry,
 * an nsmgr and a forwarder, the kernel2kernel endpoint (172.16.1.100/31) and one client; prints
 * the negotiated connection and tears everything down.
 */
import { ConnectionSchema, create, NetworkServiceRequestSchema } from "../api/index.js";
import { CallContext } from "../sdk/core/context.js";
import { createSandbox } from "../sdk/testing/sandbox.js";

export async function sandboxDemo(): Promise<void> {
  const sb = await createSandbox({ nodes: 1 });
  try {
    await sb.registerNetworkService({ name: "kernel2kernel", payload: "ETHERNET" });
    await sb.addEndpoint({ name: "nse-kernel", networkServices: ["kernel2kernel"], cidrPrefixes: ["172.16.1.100/31"] });
    const client = sb.client({ name: "alpine" });
    const req = create(NetworkServiceRequestSchema, {
      connection: create(ConnectionSchema, { id: "alpine-0", networkService: "kernel2kernel" }),
    });
    const ctx = CallContext.create({ deadline: Date.now() + 15_000 });
    const conn = await client.request(req, ctx);
    const ip = conn.context?.ipContext;
    console.log(
      `connection ${conn.id} to network service "${conn.networkService}" (payload ${conn.payload}), state UP`,
    );
    console.log("path:");
    for (const [i, s] of (conn.path?.pathSegments ?? []).entries()) console.log(`  ${i}. ${s.name.padEnd(12)} ${s.id}`);
    const m = conn.mechanism;
    console.log(`mechanism: ${m?.cls}/${m?.type} ${JSON.stringify(m?.parameters ?? {})}`);
    console.log(
      `client (src) addresses: ${ip?.srcIpAddrs.join(", ")}  routes: ${ip?.srcRoutes.map((r) => r.prefix).join(", ")}`,
    );
    console.log(
      `endpoint (dst) addresses: ${ip?.dstIpAddrs.join(", ")}  routes: ${ip?.dstRoutes.map((r) => r.prefix).join(", ")}`,
    );
    await client.close(conn, ctx);
    console.log("closed; tearing down the sandbox");
  } finally {
    await sb.close();
  }
}
