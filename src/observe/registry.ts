// SPDX-License-Identifier: Apache-2.0
/**
 * Registry metrics: `nsm_registry_records{kind="ns"|"nse"}` (the records a plain Find of
 * everything returns, counted at scrape time, so expiry is seen too),
 * `nsm_registry_watchers{kind}` (open Find streams with `watch`) and
 * `nsm_registry_calls_total{kind,op,code}`. {@link observeRegistry} wraps the bound chains that
 * the registry serves; the wrapper adds no wait to any call.
 */
import { Counter, Gauge, type Registry } from "prom-client";
import { CallContext } from "../sdk/core/context.js";
import { resultCode } from "../sdk/networkservice/common/metrics/index.js";
import type { RegistryChains } from "../sdk/registry/chains/slots.js";
import type { RegistryHandler } from "../sdk/registry/core/chain.js";
import {
  type NseTypes,
  type NsTypes,
  nseKind,
  nsKind,
  type RegistryKind,
  type RegistryTypes,
} from "../sdk/registry/core/kind.js";

interface Series {
  calls: Counter<"kind" | "op" | "code">;
  watchers: Gauge<"kind">;
}

async function timed<T>(series: Series, kind: string, op: string, call: () => Promise<T>): Promise<T> {
  try {
    const v = await call();
    series.calls.inc({ kind, op, code: "OK" });
    return v;
  } catch (err) {
    series.calls.inc({ kind, op, code: resultCode(err) });
    throw err;
  }
}

function observed<T extends RegistryTypes>(
  kind: RegistryKind<T>,
  label: string,
  h: RegistryHandler<T>,
  series: Series,
): RegistryHandler<T> {
  return {
    register: (rec, ctx) => timed(series, label, "register", () => h.register(rec, ctx)),
    unregister: (rec, ctx) => timed(series, label, "unregister", () => h.unregister(rec, ctx)),
    find: (query, ctx) => {
      series.calls.inc({ kind: label, op: "find", code: "OK" });
      if (!kind.isWatch(query)) return h.find(query, ctx);
      return (async function* watching() {
        series.watchers.inc({ kind: label });
        try {
          yield* h.find(query, ctx);
        } finally {
          series.watchers.dec({ kind: label });
        }
      })();
    },
  };
}

async function countRecords<T extends RegistryTypes>(kind: RegistryKind<T>, h: RegistryHandler<T>): Promise<number> {
  let n = 0;
  const ctx = CallContext.create({ deadline: Date.now() + 2000 });
  for await (const _ of h.find(kind.query(undefined, false), ctx)) n++;
  return n;
}

/** Wraps `chains` and adds the registry series to `registry` (see the module doc). */
export function observeRegistry(chains: RegistryChains, registry: Registry): RegistryChains {
  const series: Series = {
    calls: new Counter({
      name: "nsm_registry_calls_total",
      help: "Registry Register, Find and Unregister calls, by result code",
      labelNames: ["kind", "op", "code"],
      registers: [registry],
    }),
    watchers: new Gauge({
      name: "nsm_registry_watchers",
      help: "Open watching Find streams",
      labelNames: ["kind"],
      registers: [registry],
    }),
  };
  const records = new Gauge({
    name: "nsm_registry_records",
    help: "Records in the registry",
    labelNames: ["kind"],
    registers: [registry],
    async collect() {
      this.set({ kind: "ns" }, await countRecords<NsTypes>(nsKind, chains.ns));
      this.set({ kind: "nse" }, await countRecords<NseTypes>(nseKind, chains.nse));
    },
  });
  void records;
  return {
    ns: observed<NsTypes>(nsKind, "ns", chains.ns, series),
    nse: observed<NseTypes>(nseKind, "nse", chains.nse, series),
  };
}
