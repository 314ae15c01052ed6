// SPDX-License-Identifier: Apache-2.0
/**
 * NetworkServices are API objects (CRDs upstream, the state file here) that the runtime keeps
 * registered in its registry: registered by `apply`, unregistered by `delete` and `down`, and
 * registered again when the registry restarts empty.
 */
import { fromJson } from "@bufbuild/protobuf";
import { type NetworkService, NetworkServiceSchema } from "../api/gen/registry_pb.js";
import { NsmError } from "../sdk/core/errors.js";
import { registerNetworkService, unregisterNetworkService } from "./cluster.js";
import { type RuntimeContext, save } from "./context.js";
import { LocalError } from "./errors.js";
import { cliDialOptions } from "./identity.js";
import type { State } from "./state.js";

/** Registers `record` in the runtime's registry; a refusal is a LocalError naming the service. */
export async function registerService(ctx: RuntimeContext, state: State, record: NetworkService): Promise<void> {
  try {
    await registerNetworkService(ctx.paths.registrySocket, await cliDialOptions(ctx.paths, state), record);
  } catch (err) {
    throw new LocalError(
      `networkservice/${record.name}: the registry refused it: ${NsmError.from(err).toStatusString()}`,
    );
  }
}

/** Registers every NetworkService of the state again (after a registry restart). */
export async function registerServicesAgain(ctx: RuntimeContext, state: State): Promise<void> {
  for (const ns of state.networkServices) {
    await registerNetworkService(
      ctx.paths.registrySocket,
      await cliDialOptions(ctx.paths, state),
      fromJson(NetworkServiceSchema, ns.record as never),
    );
  }
  if (state.networkServices.length > 0)
    ctx.out.say(`  ${state.networkServices.length} network service(s) registered again`);
}

/** Unregisters the NetworkService `name` (a failure is a warning) and forgets it. */
export async function unregisterService(ctx: RuntimeContext, state: State, name: string): Promise<void> {
  const s = state.networkServices.find((x) => x.name === name);
  if (!s) return;
  try {
    await unregisterNetworkService(
      ctx.paths.registrySocket,
      await cliDialOptions(ctx.paths, state),
      fromJson(NetworkServiceSchema, s.record as never),
    );
  } catch (err) {
    ctx.out.warn(`networkservice/${name}: could not unregister: ${NsmError.from(err).toStatusString()}`);
  }
  state.networkServices = state.networkServices.filter((x) => x !== s);
  save(ctx, state);
}
