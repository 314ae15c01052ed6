// SPDX-License-Identifier: Apache-2.0
/** The server half of the kernel cross-connect: builds, refreshes and removes the veth pair. */
import type { Connection, Mechanism } from "../../../api/index.js";
import { closeQuietly, type NetworkServiceElement } from "../../../sdk/core/chain.js";
import type { CallContext } from "../../../sdk/core/context.js";
import { Code, invalidArgument, NsmError } from "../../../sdk/core/errors.js";
import { clientIpPlan, endpointIpPlan, unionIpPlans } from "../ipcontext/plan.js";
import { followNetns } from "../xconnect/netns.js";
import { type ResolvedXconnectOptions, resolveXconnectOptions } from "../xconnect/options.js";
import { isKernel, locatePod, type PodLocation } from "../xconnect/pod.js";
import { xconnectTag } from "../xconnect/tag.js";
import { VethDataPlane } from "./dataplane.js";
import {
  loadAndDeleteState,
  loadEndpointMechanism,
  loadState,
  storeState,
  type XconnectPlan,
  type XconnectState,
} from "./metadata.js";
import type { KernelXconnectServerOptions } from "./options.js";

type Location = PodLocation;
const locate = locatePod;

function buildPlan(conn: Connection, client: Location, endpoint: Location, owner: string): XconnectPlan {
  if (client.netns === endpoint.netns && client.name === endpoint.name) {
    throw invalidArgument(
      `client and endpoint ask for the same interface "${client.name}" in the same netns ${client.netns}`,
    );
  }
  const ipc = conn.context?.ipContext;
  return {
    client: {
      side: "client",
      netns: client.netns,
      netnsId: client.netnsId,
      name: client.name,
      tag: xconnectTag("client", conn.id, owner),
      ...clientIpPlan(ipc),
    },
    endpoint: {
      side: "endpoint",
      netns: endpoint.netns,
      netnsId: endpoint.netnsId,
      name: endpoint.name,
      tag: xconnectTag("endpoint", conn.id, owner),
      ...endpointIpPlan(ipc),
    },
    mtu: conn.context?.MTU ?? 0,
  };
}

const samePlan = (a: XconnectPlan, b: XconnectPlan) => JSON.stringify(a) === JSON.stringify(b);

const sameLinks = (a: XconnectPlan, b: XconnectPlan) =>
  (["client", "endpoint"] as const).every(
    (s) => a[s].netns === b[s].netns && a[s].name === b[s].name && a[s].tag === b[s].tag,
  );

/**
 * Brings the kernel from the recorded state to what `conn` asks for, storing the new record
 * as it goes. Touches nothing when the plan equals a clean record.
 */
async function reconcile(
  o: ResolvedXconnectOptions,
  veth: VethDataPlane,
  clientMechanism: Mechanism | undefined,
  conn: Connection,
  ctx: CallContext,
  previous: XconnectState | undefined,
): Promise<void> {
  const old = previous?.programmed;
  const stale = previous?.stale ?? false;
  const endpointMechanism = loadEndpointMechanism(ctx);
  if (!isKernel(clientMechanism) || !isKernel(endpointMechanism)) {
    // Not (or no longer) a local kernel connection.
    if (old) await veth.destroy(old, ctx.log);
    storeState(ctx, { programmed: undefined, stale: false });
    return;
  }
  const client = locate("client", clientMechanism);
  const endpoint = locate("endpoint", endpointMechanism);
  const plan = buildPlan(conn, client, endpoint, o.owner);
  if (old) {
    followNetns(old.client, plan.client);
    followNetns(old.endpoint, plan.endpoint);
  }
  if (old && !stale && samePlan(old, plan)) return;

  // HOOK(netns-ownership): nothing in the kernel has changed yet.
  for (const l of [client, endpoint])
    await o.checkNetns({ side: l.side, url: l.url, netns: l.netns, connection: conn }, ctx);

  if (old && sameLinks(old, plan)) {
    try {
      await veth.update(old, plan, stale);
    } catch (err) {
      storeState(ctx, { programmed: unionOf(old, plan), stale: true });
      throw err;
    }
    storeState(ctx, { programmed: plan, stale: false });
    ctx.log.debug({ connId: conn.id }, "kernel cross-connect updated");
    return;
  }
  if (old) {
    await veth.destroy(old, ctx.log);
    storeState(ctx, { programmed: undefined, stale: false });
  } else {
    // No record: the first Request of this life. The pair may be there from an earlier one.
    await o.reconciler?.claim(conn.id);
    const adopted = await veth.adopt(plan, ctx.log);
    if (adopted) {
      storeState(ctx, { programmed: plan, stale: false });
      ctx.log.info(
        {
          connId: conn.id,
          client: `${plan.client.netns}:${plan.client.name}`,
          endpoint: `${plan.endpoint.netns}:${plan.endpoint.name}`,
          ifindex: adopted,
        },
        "kernel cross-connect of an earlier life re-adopted",
      );
      return;
    }
  }
  await veth.create(plan, ctx.log);
  storeState(ctx, { programmed: plan, stale: false });
  ctx.log.debug(
    {
      connId: conn.id,
      client: `${plan.client.netns}:${plan.client.name}`,
      endpoint: `${plan.endpoint.netns}:${plan.endpoint.name}`,
    },
    "kernel cross-connect created",
  );
}

function unionOf(a: XconnectPlan, b: XconnectPlan): XconnectPlan {
  return {
    client: { ...b.client, ...unionIpPlans(a.client, b.client) },
    endpoint: { ...b.endpoint, ...unionIpPlans(a.endpoint, b.endpoint) },
    mtu: b.mtu,
  };
}

/**
 * Programs the local kernel data plane of a forwarder: one veth pair between the client's and
 * the endpoint's netns, with the connection's addresses, routes and neighbours. Acts after
 * `next` returns, when both sides' KERNEL mechanisms are known. See `index.ts` for the contract.
 */
export function kernelXconnectServer(options: Readonly<KernelXconnectServerOptions>): NetworkServiceElement {
  const o = resolveXconnectOptions(options, "kernelXconnectServer");
  const veth = new VethDataPlane(o.kernel);
  return {
    name: "kernelXconnectServer",
    requires: ["metadata"],
    async request(req, ctx, next) {
      if (!req.connection) throw invalidArgument("request has no connection");
      const clientMechanism = req.connection.mechanism;
      // Fail before opening anything downstream when the client's netns URL is unusable.
      if (isKernel(clientMechanism)) locate("client", clientMechanism);
      const previous = loadState(ctx);
      const conn = await next.request(req, ctx);
      try {
        await reconcile(o, veth, clientMechanism, conn, ctx, previous);
        return conn;
      } catch (err) {
        const e = NsmError.from(err, Code.Internal);
        ctx.log.warn({ connId: conn.id, err: e.message }, "kernel cross-connect failed");
        // A first Request must leave nothing open; a failed refresh leaves the connection to heal.
        if (previous === undefined)
          await closeQuietly(next, conn, ctx, "a kernel cross-connect failure", o.cleanupTimeoutMs);
        throw e;
      }
    },
    async close(conn, ctx, next) {
      const state = loadAndDeleteState(ctx);
      let failure: NsmError | undefined;
      if (state?.programmed) {
        try {
          await veth.destroy(state.programmed, ctx.log);
        } catch (err) {
          failure = NsmError.from(err, Code.Internal);
          ctx.log.warn({ connId: conn.id, err: failure.message }, "cannot delete the kernel cross-connect");
        }
      }
      await next.close(conn, ctx);
      if (failure) throw failure;
    },
  };
}
