// SPDX-License-Identifier: Apache-2.0
/** The server half of the kernel cross-connect: builds, refreshes and removes the veth pair. */
import type { Connection, Mechanism } from "../../../api/index.js";
import { closeQuietly, type NetworkServiceElement } from "../../../sdk/core/chain.js";
import type { CallContext } from "../../../sdk/core/context.js";
import { Code, invalidArgument, NsmError } from "../../../sdk/core/errors.js";
import { requestConnection } from "../../../sdk/core/request.js";
import { clientIpPlan, endpointIpPlan, unionIpPlans } from "../ipcontext/plan.js";
import { followNetns } from "../xconnect/netns.js";
import { type ResolvedXconnectOptions, resolveXconnectOptions } from "../xconnect/options.js";
import { isKernel, locatePod, type PodLocation } from "../xconnect/pod.js";
import { xconnectTag } from "../xconnect/tag.js";
import { type TargetLinks, VethDataPlane } from "./dataplane.js";
import {
  loadAndDeleteVethState,
  loadEndpointMechanism,
  loadVethState,
  storeVethState,
  type VethPlan,
  type VethState,
} from "./metadata.js";
import type { KernelXconnectServerOptions } from "./options.js";

function buildPlan(conn: Connection, client: PodLocation, endpoint: PodLocation, owner: string): VethPlan {
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

const samePlan = (a: VethPlan, b: VethPlan) => JSON.stringify(a) === JSON.stringify(b);

const sameLinks = (a: VethPlan, b: VethPlan) =>
  (["client", "endpoint"] as const).every(
    (s) => a[s].netns === b[s].netns && a[s].name === b[s].name && a[s].tag === b[s].tag,
  );

/** What the steps of one element share. */
interface VethXconnect {
  readonly o: ResolvedXconnectOptions;
  readonly veth: VethDataPlane;
}

/**
 * Brings the kernel from the recorded state to what `conn` asks for, storing the new record
 * as it goes. Touches nothing when the plan equals a clean record.
 */
async function reconcile(
  x: VethXconnect,
  clientMechanism: Mechanism | undefined,
  conn: Connection,
  ctx: CallContext,
  previous: VethState | undefined,
): Promise<void> {
  const old = previous?.programmed;
  const stale = previous?.stale ?? false;
  const endpointMechanism = loadEndpointMechanism(ctx);
  if (!isKernel(clientMechanism) || !isKernel(endpointMechanism)) {
    // Not (or no longer) a local kernel connection.
    if (old) await x.veth.destroy(old, ctx.log);
    storeVethState(ctx, { programmed: undefined, stale: false });
    return;
  }
  const client = locatePod("client", clientMechanism);
  const endpoint = locatePod("endpoint", endpointMechanism);
  const plan = buildPlan(conn, client, endpoint, x.o.owner);
  if (old) {
    followNetns(old.client, plan.client);
    followNetns(old.endpoint, plan.endpoint);
  }
  if (old && !stale && samePlan(old, plan)) return;

  // The netns-ownership check: nothing in the kernel has changed yet.
  for (const l of [client, endpoint])
    await x.o.checkNetns({ side: l.side, url: l.url, netns: l.netns, connection: conn }, ctx);

  if (old && sameLinks(old, plan)) {
    await update(x, old, plan, stale, conn, ctx);
    return;
  }
  if (old) {
    await x.veth.destroy(old, ctx.log);
    storeVethState(ctx, { programmed: undefined, stale: false });
    await create(x, plan, conn, ctx);
    return;
  }
  const adopted = await adoptEarlierLife(x, plan, conn, ctx);
  if (adopted.adopted) return;
  await create(x, plan, conn, ctx, adopted.found);
}

/** Same links: applies the difference; a failure leaves a stale record of both plans. */
async function update(
  x: VethXconnect,
  old: VethPlan,
  plan: VethPlan,
  stale: boolean,
  conn: Connection,
  ctx: CallContext,
): Promise<void> {
  try {
    await x.veth.update(old, plan, stale);
  } catch (err) {
    storeVethState(ctx, { programmed: unionOf(old, plan), stale: true });
    throw err;
  }
  storeVethState(ctx, { programmed: plan, stale: false });
  ctx.log.debug({ connId: conn.id }, "kernel cross-connect updated");
}

/**
 * No record: the first Request of this life. The pair may be there from an earlier one; when it
 * is not, what was found at the target names goes on to `create`.
 */
async function adoptEarlierLife(x: VethXconnect, plan: VethPlan, conn: Connection, ctx: CallContext) {
  await x.o.reconciler?.claim(conn.id);
  const adopted = await x.veth.adopt(plan, ctx.log);
  if (!adopted.adopted) return adopted;
  storeVethState(ctx, { programmed: plan, stale: false });
  ctx.log.info(
    {
      connId: conn.id,
      client: `${plan.client.netns}:${plan.client.name}`,
      endpoint: `${plan.endpoint.netns}:${plan.endpoint.name}`,
      ifindex: { client: adopted.client, endpoint: adopted.endpoint },
    },
    "kernel cross-connect of an earlier life re-adopted",
  );
  return adopted;
}

async function create(
  x: VethXconnect,
  plan: VethPlan,
  conn: Connection,
  ctx: CallContext,
  found?: TargetLinks,
): Promise<void> {
  await x.veth.create(plan, ctx.log, found);
  storeVethState(ctx, { programmed: plan, stale: false });
  ctx.log.debug(
    {
      connId: conn.id,
      client: `${plan.client.netns}:${plan.client.name}`,
      endpoint: `${plan.endpoint.netns}:${plan.endpoint.name}`,
    },
    "kernel cross-connect created",
  );
}

function unionOf(a: VethPlan, b: VethPlan): VethPlan {
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
  const x: VethXconnect = { o, veth: new VethDataPlane(o.kernel, o.deletions) };
  return {
    name: "kernelXconnectServer",
    requires: ["metadata"],
    async request(req, ctx, next) {
      const clientMechanism = requestConnection(req).mechanism;
      // Fail before opening anything downstream when the client's netns URL is unusable.
      if (isKernel(clientMechanism)) locatePod("client", clientMechanism);
      const previous = loadVethState(ctx);
      const conn = await next.request(req, ctx);
      try {
        await reconcile(x, clientMechanism, conn, ctx, previous);
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
      const state = loadAndDeleteVethState(ctx);
      // The pair's deletion and downstream's Close overlap; downstream's error wins.
      const [kernel, downstream] = await Promise.allSettled([
        state?.programmed ? x.veth.destroy(state.programmed, ctx.log) : undefined,
        next.close(conn, ctx),
      ]);
      let failure: NsmError | undefined;
      if (kernel.status === "rejected") {
        failure = NsmError.from(kernel.reason, Code.Internal);
        ctx.log.warn({ connId: conn.id, err: failure.message }, "cannot delete the kernel cross-connect");
      }
      if (downstream.status === "rejected") throw downstream.reason;
      if (failure) throw failure;
    },
  };
}
