// SPDX-License-Identifier: Apache-2.0
/**
 * pbr (forwarder, server): programs the connection's routing policies (`ip_context.policies`)
 * in the client's netns as ip rules and routing tables, IPv4 and IPv6 (upstream sdk-kernel
 * `ipcontext/iprule`).
 *
 * Purpose: policy-based routing from endpoints (`NSM_PBR_CONFIG_PATH`, see `plan.ts` for what
 * one policy becomes). Each policy gets the smallest table id not used by a rule or a route of
 * that netns (upstream's numbering: the first policy of a fresh pod gets table 1).
 * Chain placement: forwarder `additional`, before the cross-connects (it acts after `next`
 * returns, when the client's interface exists and its netns has passed the ownership check).
 * Per-connection state: the tables it programmed and where (server-side metadata). On a
 * refresh only the policies that changed are removed / added. A first Request of a restarted
 * forwarder re-adopts the tables whose rules are already in the netns.
 * Failure behaviour: a malformed policy is InvalidArgument before the kernel is touched; a
 * failing first Request closes what it opened downstream; Close removes the rules and the
 * tables' routes (what is already gone counts as removed).
 */
import { type Connection, type Mechanism, MechanismType } from "../../../api/index.js";
import { closeQuietly, type NetworkServiceElement } from "../../../sdk/core/chain.js";
import type { CallContext } from "../../../sdk/core/context.js";
import { Code, NsmError } from "../../../sdk/core/errors.js";
import type { Logger } from "../../../sdk/core/logger.js";
import { requestConnection } from "../../../sdk/core/request.js";
import { createMetadataKey, metadataOf } from "../../../sdk/networkservice/common/metadata/index.js";
import type { KernelApi } from "../../api.js";
import { tolerateGone } from "../xconnect/gone.js";
import { relocateNetns } from "../xconnect/netns.js";
import { locatePod } from "../xconnect/pod.js";
import { type PbrPolicy, pbrPolicies, sameSelectors } from "./plan.js";

export interface PolicyRoutesServerOptions {
  kernel: KernelApi;
  /** How long cleanup of a failed first Request may take. @default 15 s */
  cleanupTimeoutMs?: number;
}

/** One programmed policy. */
interface Programmed {
  table: number;
  policy: PbrPolicy;
}

/** Where the policies of one connection are, and which. */
interface PbrState {
  netns: string;
  netnsId?: string;
  name: string;
  /** The ifindex of the client's interface the tables' routes go through (its routes die with it). */
  ifindex?: number;
  programmed: Programmed[];
}

const stateKey = createMetadataKey<PbrState>("pbr.state");

/** The tables a netns's rules and routes use; 253-255 (default, main, local) always. */
async function usedTables(kernel: KernelApi, netns: string): Promise<Set<number>> {
  const [rules, routes] = await Promise.all([kernel.listRules(netns), kernel.listRoutes(netns, { table: 0 })]);
  return new Set([0, 253, 254, 255, ...rules.map((r) => r.table), ...routes.map((r) => r.table)]);
}

function smallestFree(used: Set<number>): number {
  let t = 1;
  while (used.has(t)) t++;
  used.add(t);
  return t;
}

async function program(kernel: KernelApi, where: PbrState, p: Programmed, ruleThere: boolean): Promise<void> {
  for (const r of p.policy.routes) {
    await kernel.replaceRoute(where.netns, {
      dst: r.dst,
      gateway: r.gateway,
      onlink: r.gateway !== undefined,
      link: where.name,
      scope: "universe",
      table: p.table,
    });
  }
  if (!ruleThere) await kernel.addRule(where.netns, { ...p.policy.rule, table: p.table });
}

async function unprogram(kernel: KernelApi, netns: string, name: string, p: Programmed): Promise<void> {
  await tolerateGone(kernel.deleteRule(netns, { ...p.policy.rule, table: p.table }));
  const routes = (await tolerateGone(kernel.listRoutes(netns, { table: p.table, link: name }))) ?? [];
  for (const r of routes) await tolerateGone(kernel.deleteRoute(netns, { dst: r.dst, link: name, table: p.table }));
}

/** Rules of an earlier life (a restarted forwarder) that select what a wanted policy selects. */
async function earlierTables(kernel: KernelApi, netns: string, wanted: PbrPolicy[]): Promise<Map<string, number>> {
  const found = new Map<string, number>();
  if (wanted.length === 0) return found;
  const rules = (await kernel.listRules(netns)).filter((r) => r.action === 1 && r.table > 0 && r.table < 253);
  for (const p of wanted) {
    const r = rules.find((x) => sameSelectors(x, p.rule) && ![...found.values()].includes(x.table));
    if (r) found.set(p.key, r.table);
  }
  return found;
}

/**
 * The tables' routes go with the interface: when the cross-connect replaced it (a heal to another
 * endpoint), the kept policies' routes are put back through the new one. Rules stay.
 */
async function reroute(kernel: KernelApi, where: PbrState): Promise<void> {
  if (where.programmed.length === 0) return;
  const index = (await kernel.findLink(where.netns, where.name))?.index;
  if (index === undefined || index === where.ifindex) return;
  for (const p of where.programmed) await program(kernel, where, p, true);
  where.ifindex = index;
}

/** Serializes the table allocations of one forwarder (two connections of one pod must not take the same id). */
function serializer() {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>): Promise<T> => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => undefined);
    return run;
  };
}

interface Pbr {
  kernel: KernelApi;
  serialized: ReturnType<typeof serializer>;
}

async function removeAll(x: Pbr, state: PbrState | undefined, log: Logger): Promise<void> {
  if (!state || state.programmed.length === 0) return;
  const netns = await relocateNetns(x.kernel, state);
  if (netns === undefined) return;
  for (const p of state.programmed) await unprogram(x.kernel, netns, state.name, p);
  log.debug({ netns, tables: state.programmed.map((p) => p.table) }, "policy routes removed");
}

/** Programs `toAdd`, each in a table of its own (one re-adopted from an earlier life when `adopt`). */
async function addPolicies(x: Pbr, where: PbrState, toAdd: PbrPolicy[], adopt: boolean): Promise<void> {
  await x.serialized(async () => {
    const earlier = adopt ? await earlierTables(x.kernel, where.netns, toAdd) : new Map<string, number>();
    const used = await usedTables(x.kernel, where.netns);
    for (const policy of toAdd) {
      const table = earlier.get(policy.key) ?? smallestFree(used);
      const p = { table, policy };
      where.programmed.push(p);
      await program(x.kernel, where, p, earlier.has(policy.key));
    }
    where.ifindex = (await x.kernel.findLink(where.netns, where.name))?.index;
  });
}

/** Brings the client's netns from `previous` to the policies of `conn`, storing the new record. */
async function reconcile(x: Pbr, mechanism: Mechanism, conn: Connection, ctx: CallContext, previous?: PbrState) {
  const wanted = pbrPolicies(conn.context?.ipContext);
  const pod = locatePod("client", mechanism);
  let kept = previous?.programmed ?? [];
  if (previous && (previous.netnsId !== pod.netnsId || previous.name !== pod.name)) {
    await removeAll(x, previous, ctx.log);
    kept = [];
  }
  const where: PbrState = { netns: pod.netns, netnsId: pod.netnsId, name: pod.name, programmed: [] };
  const wantedKeys = new Set(wanted.map((p) => p.key));
  for (const p of kept.filter((k) => !wantedKeys.has(k.policy.key)))
    await unprogram(x.kernel, where.netns, where.name, p);
  where.programmed = kept.filter((k) => wantedKeys.has(k.policy.key));
  where.ifindex = kept.length > 0 ? previous?.ifindex : undefined;
  metadataOf(ctx, false).store(stateKey, where);
  await reroute(x.kernel, where);
  const have = new Set(where.programmed.map((p) => p.policy.key));
  const toAdd = wanted.filter((p) => !have.has(p.key));
  if (toAdd.length === 0) return;
  await addPolicies(x, where, toAdd, previous === undefined);
  ctx.log.debug({ connId: conn.id, tables: where.programmed.map((p) => p.table) }, "policy routes programmed");
}

/** The pbr server element; see the module doc. */
export function policyRoutesServer(options: Readonly<PolicyRoutesServerOptions>): NetworkServiceElement {
  const x: Pbr = { kernel: options.kernel, serialized: serializer() };
  const cleanupTimeoutMs = options.cleanupTimeoutMs ?? 15_000;
  return {
    name: "pbr",
    requires: ["metadata"],
    async request(req, ctx, next) {
      const mechanism = requestConnection(req).mechanism;
      const previous = metadataOf(ctx, false).load(stateKey);
      const conn = await next.request(req, ctx);
      try {
        if (mechanism?.type === MechanismType.KERNEL) await reconcile(x, mechanism, conn, ctx, previous);
        else if (previous) {
          await removeAll(x, metadataOf(ctx, false).loadAndDelete(stateKey), ctx.log);
        }
        return conn;
      } catch (err) {
        const e = NsmError.from(err, Code.Internal);
        ctx.log.warn({ connId: conn.id, err: e.message }, "policy routes failed");
        if (previous === undefined) {
          await removeAll(x, metadataOf(ctx, false).loadAndDelete(stateKey), ctx.log).catch(() => undefined);
          await closeQuietly(next, conn, ctx, "a policy routing failure", cleanupTimeoutMs);
        }
        throw e;
      }
    },
    async close(conn, ctx, next) {
      const state = metadataOf(ctx, false).loadAndDelete(stateKey);
      let failure: NsmError | undefined;
      try {
        await removeAll(x, state, ctx.log);
      } catch (err) {
        failure = NsmError.from(err, Code.Internal);
        ctx.log.warn({ connId: conn.id, err: failure.message }, "cannot remove the policy routes");
      }
      await next.close(conn, ctx);
      if (failure) throw failure;
    },
  };
}
