// SPDX-License-Identifier: Apache-2.0
/**
 * The registry element contract (src/sdk/testing/contract.ts) run against the registry
 * elements: a downstream Register error reaches the caller with its code, a failed Register
 * leaves nothing stored or scheduled, and an Unregister after it is harmless.
 */
import { describe } from "node:test";
import { create } from "@bufbuild/protobuf";
import { NetworkServiceEndpointSchema, NetworkServiceSchema } from "../../../api/gen/registry_pb.js";
import { type RegistryContractSetup, registryElementContract } from "../../testing/contract.js";
import { nseRegistryFromChain } from "../core/adapters.js";
import { bindRegistry, registryChain } from "../core/chain.js";
import type { RegistryElement } from "../core/index.js";
import { type NseTypes, type NsTypes, nseKind, nsKind } from "../core/kind.js";
import { registryBegin } from "./begin/index.js";
import { registryClientInfo } from "./clientinfo/index.js";
import { registryConnect } from "./connect/index.js";
import { registryExpire } from "./expire/index.js";
import { registryHeal } from "./heal/index.js";
import { registryLocalBypass } from "./localbypass/index.js";
import { registryMemory } from "./memory/index.js";
import { registryQueryCache } from "./querycache/index.js";
import { registryRefresh } from "./refresh/index.js";
import { registrySetPayload } from "./setpayload/index.js";
import { registrySetRegistrationTime } from "./setregistrationtime/index.js";
import { registryValidation } from "./validation/index.js";

const nse = (name: string) =>
  create(NetworkServiceEndpointSchema, { name, networkServiceNames: ["svc"], url: `unix:///tmp/${name}.sock` });

/** NSE elements sit behind begin and in front of the memory store, as in the registry chains. */
const nseCase =
  (make: (lifetime: AbortSignal) => RegistryElement<NseTypes>[]) =>
  async (downstream: RegistryElement<NseTypes>, lifetime: AbortSignal): Promise<RegistryContractSetup<NseTypes>> => ({
    kind: nseKind,
    elements: [registryBegin(nseKind), ...make(lifetime), downstream, registryMemory(nseKind)],
    record: nse,
  });

const nseTable: Record<
  string,
  (d: RegistryElement<NseTypes>, l: AbortSignal) => Promise<RegistryContractSetup<NseTypes>>
> = {
  begin: nseCase(() => []),
  clientinfo: nseCase(() => [registryClientInfo({ nodeName: "node-1" })]),
  connect: async (downstream) => ({
    kind: nseKind,
    elements: [
      registryBegin(nseKind),
      registryConnect(nseRegistryFromChain(bindRegistry(registryChain(downstream, registryMemory(nseKind))))),
    ],
    record: nse,
  }),
  expire: nseCase((signal) => [registryExpire({ signal })]),
  heal: nseCase((signal) => [registryHeal({ signal })]),
  localbypass: nseCase(() => [registryLocalBypass("unix:///tmp/nsmgr.sock")]),
  "memory (before downstream)": async (downstream) => ({
    kind: nseKind,
    elements: [registryBegin(nseKind), registryMemory(nseKind), downstream],
    record: nse,
  }),
  querycache: nseCase(() => [registryQueryCache(nseKind)]),
  refresh: nseCase((signal) => [registryRefresh({ signal })]),
  setregistrationtime: nseCase(() => [registrySetRegistrationTime()]),
  validation: nseCase(() => [registryValidation(nseKind)]),
};

describe("registry element contract (NSE)", () => {
  for (const [name, factory] of Object.entries(nseTable)) registryElementContract(name, factory);
});

describe("registry element contract (NS)", () => {
  registryElementContract<NsTypes>("setpayload", async (downstream) => ({
    kind: nsKind,
    elements: [registryBegin(nsKind), registrySetPayload(), downstream, registryMemory(nsKind)],
    record: (name) => create(NetworkServiceSchema, { name }),
  }));
});
