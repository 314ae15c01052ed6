// SPDX-License-Identifier: Apache-2.0
/**
 * localbypass (registry, NSE, nsmgr): publishes the nsmgr's URL for local endpoints.
 *
 * Purpose (reference §7.3): an NSE (or forwarder) registers with its own socket URL, which only
 * its node can dial. Upstream, the record must carry the nsmgr's public URL so that a remote
 * forwarder dials the nsmgr, while on this node the real URL must still be used.
 * - Register: remembers the NSE's real URL and sends the record on with `url` = the nsmgr URL;
 *   the record returned to the caller carries the real URL again.
 * - Find: a record that carries the nsmgr URL gets the real URL back if this nsmgr knows the
 *   NSE; if it does not (stale after an nsmgr restart), the record is dropped. `deleted`
 *   events are always passed on.
 * - Unregister: sends the record on with the nsmgr URL and forgets the NSE. An Unregister of
 *   an NSE this nsmgr does not know does nothing (it never published it).
 * Chain placement: nsmgr NSE chain, after begin and expire, right before the connection to the
 * remote registry, or before memory when nsmgr keeps the records itself (so that forwarder
 * discovery by `url` = nsmgr URL works in both cases).
 * Per-name state: the real URL of every NSE registered through this nsmgr.
 * Options: the nsmgr's public URL.
 * Failure behaviour: a Register without a `url` is InvalidArgument; a failed first Register
 * leaves no state (a failed refresh keeps the known URL).
 */
import type { CallContext } from "../../../core/context.js";
import { invalidArgument } from "../../../core/errors.js";
import type { RegistryElement, RegistryHandler } from "../../core/chain.js";
import { type NseTypes, nseKind } from "../../core/kind.js";

class LocalBypass implements RegistryElement<NseTypes> {
  readonly name = "localbypass";
  readonly #urls = new Map<string, string>();

  constructor(readonly nsmgrUrl: string) {}

  async register(record: NseTypes["record"], ctx: CallContext, next: RegistryHandler<NseTypes>) {
    if (!record.url) throw invalidArgument(`NetworkServiceEndpoint ${record.name} has no url`);
    const realUrl = record.url;
    const previous = this.#urls.get(record.name);
    // Known before next runs, so that a watcher notified during the Register can swap the URL.
    this.#urls.set(record.name, realUrl);
    const out = nseKind.cloneRecord(record);
    out.url = this.nsmgrUrl;
    let resp: NseTypes["record"];
    try {
      resp = await next.register(out, ctx);
    } catch (err) {
      if (previous === undefined) this.#urls.delete(record.name);
      else this.#urls.set(record.name, previous);
      throw err;
    }
    const ret = nseKind.cloneRecord(resp);
    ret.url = realUrl;
    return ret;
  }

  async *find(query: NseTypes["query"], ctx: CallContext, next: RegistryHandler<NseTypes>) {
    for await (const resp of next.find(query, ctx)) {
      const rec = resp.networkServiceEndpoint;
      if (rec && rec.url === this.nsmgrUrl) {
        const realUrl = this.#urls.get(rec.name);
        if (realUrl !== undefined) rec.url = realUrl;
        else if (!resp.deleted) continue;
      }
      yield resp;
    }
  }

  async unregister(record: NseTypes["record"], ctx: CallContext, next: RegistryHandler<NseTypes>) {
    if (!this.#urls.has(record.name)) return;
    const out = nseKind.cloneRecord(record);
    out.url = this.nsmgrUrl;
    await next.unregister(out, ctx);
    this.#urls.delete(record.name);
  }
}

/** Creates the localbypass element for the nsmgr's NSE registry; `nsmgrUrl` is its public URL. */
export function registryLocalBypass(nsmgrUrl: string): RegistryElement<NseTypes> {
  if (!nsmgrUrl) throw invalidArgument("localbypass needs the nsmgr URL");
  return new LocalBypass(nsmgrUrl);
}
