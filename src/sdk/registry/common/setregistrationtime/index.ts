// SPDX-License-Identifier: Apache-2.0
/**
 * setregistrationtime (registry, NSE): stamps `initial_registration_time` once per registration.
 *
 * Purpose: consumers can tell how long an NSE has been registered; refreshes (which re-send
 * the original request) must not reset it (reference §5).
 * Chain placement: after begin (so an expiry Unregister reaches it and it forgets the name),
 * before the storage.
 * Per-name state: the initial registration time of each registered name; set by the first
 * successful Register (the caller's value if it sent one, else now), reused by every later
 * Register of that name, forgotten on Unregister.
 * Options: none.
 * Failure behaviour: none of its own; a failed first Register leaves no state.
 */
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import type { CallContext } from "../../../core/context.js";
import type { RegistryElement, RegistryHandler } from "../../core/chain.js";
import { type NseTypes, nseKind } from "../../core/kind.js";

class SetRegistrationTime implements RegistryElement<NseTypes> {
  readonly name = "setregistrationtime";
  readonly #times = new Map<string, Timestamp>();

  async register(record: NseTypes["record"], ctx: CallContext, next: RegistryHandler<NseTypes>) {
    const out = nseKind.cloneRecord(record);
    const known = this.#times.get(record.name);
    const initial = known ?? record.initialRegistrationTime ?? timestampNow();
    out.initialRegistrationTime = initial;
    const resp = await next.register(out, ctx);
    if (!known) this.#times.set(record.name, initial);
    return resp;
  }

  find(query: NseTypes["query"], ctx: CallContext, next: RegistryHandler<NseTypes>) {
    return next.find(query, ctx);
  }

  async unregister(record: NseTypes["record"], ctx: CallContext, next: RegistryHandler<NseTypes>) {
    this.#times.delete(record.name);
    await next.unregister(record, ctx);
  }
}

/** Creates the setregistrationtime element for the NSE registry. */
export function registrySetRegistrationTime(): RegistryElement<NseTypes> {
  return new SetRegistrationTime();
}
