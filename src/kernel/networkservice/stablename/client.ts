// SPDX-License-Identifier: Apache-2.0
/**
 * The forwarder's KERNEL mechanism client with interface names that survive a restart.
 *
 * The forwarder names the endpoint's interface (the `name` of the KERNEL mechanism it offers
 * the NSE). The sdk's `kernelMechanismClient` draws a random name and keeps it in the
 * connection's metadata, which dies with the forwarder: after a kill -9, the re-Request of a
 * live connection would name another interface, and the pair of the earlier life could not be
 * re-adopted (the NSE side would be rebuilt under the new name). Here the name is derived from
 * the connection id instead (`<service[:7]>-<hash of the id>`, 15 characters, the alphabet of
 * generated names), so every life of the forwarder asks for the same one. A name already in
 * the request wins, as in `kernelMechanismClient`.
 *
 * The hash takes at least 7 characters (62^7 names), where a generated name keeps 10 for the
 * service and leaves 4 to chance: with 4, 1000 connections to one endpoint (one netns) shared a
 * name with a probability of about 3 % (the birthday bound), and the Request that met the other
 * connection's link failed with AlreadyExists; with 7 it is about 1 in 7 million.
 */
import { createHash } from "node:crypto";
import { Cls, clone, type Mechanism, MechanismSchema, MechanismType, newMechanism, Param } from "../../../api/index.js";
import type { NetworkServiceElement } from "../../../sdk/core/chain.js";
import { kernelMechanismClient } from "../../../sdk/networkservice/common/kernelmechanism/index.js";
import { generateInterfaceName, INTERFACE_NAME_ALPHABET } from "../../../sdk/tools/ifname.js";
import { isKernel } from "../xconnect/pod.js";

/** How much of the service name a stable name keeps: the rest of the 15 characters is hash. */
const STABLE_PREFIX_LENGTH = 7;

/** `<networkService[:7]>-<hash of connectionId>`, 15 characters, always the same for the same pair. */
export function connectionInterfaceName(networkService: string, connectionId: string): string {
  // The prefix rules (characters the kernel refuses) are generateInterfaceName's; its random
  // part, which never contains "-", is replaced.
  const generated = generateInterfaceName(networkService.slice(0, STABLE_PREFIX_LENGTH));
  const cut = generated.lastIndexOf("-") + 1;
  const digest = createHash("sha256").update(connectionId).digest();
  let suffix = "";
  for (const b of digest) {
    if (suffix.length === generated.length - cut) break;
    suffix += INTERFACE_NAME_ALPHABET[b % INTERFACE_NAME_ALPHABET.length];
  }
  return generated.slice(0, cut) + suffix;
}

/**
 * `kernelMechanismClient()` whose generated interface name is {@link connectionInterfaceName}
 * (see the module doc). Goes where `kernelMechanismClient()` goes: the forwarder's client
 * mechanisms (`mechanismsClient({ KERNEL: … })`).
 */
export function stableKernelMechanismClient(): NetworkServiceElement {
  const inner = kernelMechanismClient();
  return {
    name: "stableKernelMechanismClient",
    request(req, ctx, next) {
      const conn = req.connection;
      const kernelPrefs = req.mechanismPreferences.filter(isKernel);
      const named =
        !conn ||
        (isKernel(conn.mechanism) && !!conn.mechanism.parameters[Param.NAME]) ||
        kernelPrefs.some((m) => m.parameters[Param.NAME]);
      if (named) return inner.request(req, ctx, next);
      const name = connectionInterfaceName(conn.networkService, conn.id);
      const withName = (m: Mechanism) => {
        const c = clone(MechanismSchema, m);
        c.parameters[Param.NAME] = name;
        return c;
      };
      const mechanismPreferences = kernelPrefs.length
        ? req.mechanismPreferences.map((m) => (isKernel(m) ? withName(m) : m))
        : [...req.mechanismPreferences, newMechanism(Cls.LOCAL, MechanismType.KERNEL, { [Param.NAME]: name })];
      return inner.request({ ...req, mechanismPreferences }, ctx, next);
    },
    close(conn, ctx, next) {
      return inner.close(conn, ctx, next);
    },
  };
}
