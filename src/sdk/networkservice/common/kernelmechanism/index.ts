// SPDX-License-Identifier: Apache-2.0
/**
 * kernelmechanism: the KERNEL mechanism parameters of each end (upstream `mechanisms/kernel`).
 *
 * Purpose: a KERNEL mechanism names the interface to create (`name`, ≤ 15 characters) and the
 * network namespace to put it in (`inodeURL`). The client (NSC, or the client side of a
 * forwarder) makes sure its request offers a KERNEL/LOCAL preference carrying both; the server
 * (NSE) fills them in on the selected KERNEL mechanism for its own end.
 * Chain placement: client: among the mechanism clients (directly, or in `mechanismsClient`
 * under `KERNEL`); server: in `mechanismsServer` under `KERNEL`. Both need metadata earlier
 * in the chain (the server element declares `requires: ["metadata"]`).
 * Per-connection state: the generated interface name, so that refreshes and re-requests
 * keep the same interface (client- or server-side metadata; deleted on Close).
 * Options: {@link KernelMechanismOptions}.
 * Failure behaviour: a bad `interfaceName` option is InvalidArgument when the element is
 * built; at request time nothing fails here.
 */
import {
  Cls,
  type Connection,
  ConnectionSchema,
  clone,
  DEFAULT_NETNS_URL,
  type Mechanism,
  MechanismSchema,
  MechanismType,
  newMechanism,
  Param,
} from "../../../../api/index.js";
import type { NetworkServiceElement } from "../../../core/chain.js";
import type { CallContext } from "../../../core/context.js";
import { invalidArgument } from "../../../core/errors.js";
import { requestConnection } from "../../../core/request.js";
import { generateInterfaceName, validateInterfaceName } from "../../../tools/ifname.js";
import { createMetadataKey, type MetadataKey, metadataOf } from "../metadata/index.js";

/** Options of {@link kernelMechanismClient} and {@link kernelMechanismServer}. */
export interface KernelMechanismOptions {
  /**
   * The interface name to ask for (`name` parameter). A name already present in the request
   * wins over it. @default generated from the network service: `<service[:10]>-<random>`
   */
  interfaceName?: string;
  /**
   * The URL of this end's network namespace (`inodeURL` parameter).
   * @default "file:///proc/thread-self/ns/net" ({@link DEFAULT_NETNS_URL})
   */
  inodeUrl?: string;
  /** Generates a name from the network service name. @default {@link generateInterfaceName} */
  interfaceNameGenerator?: (networkService: string) => string;
}

interface Resolved {
  readonly interfaceName: string | undefined;
  readonly inodeUrl: string;
  readonly generate: (networkService: string) => string;
}

function resolve(options: Readonly<KernelMechanismOptions>): Resolved {
  if (options.interfaceName !== undefined) validateInterfaceName(options.interfaceName);
  if (options.inodeUrl !== undefined && !/^[a-z][a-z0-9+.-]*:\/\//i.test(options.inodeUrl)) {
    throw invalidArgument(`inodeUrl "${options.inodeUrl}" is not a URL (expected e.g. file:///proc/self/ns/net)`);
  }
  return {
    interfaceName: options.interfaceName,
    inodeUrl: options.inodeUrl ?? DEFAULT_NETNS_URL,
    generate: options.interfaceNameGenerator ?? generateInterfaceName,
  };
}

const isKernel = (m: Mechanism | undefined): m is Mechanism => m?.type === MechanismType.KERNEL;

/** The name this end uses: the request's, else the one used before, else the option, else a new one. */
function chooseName(
  given: string | undefined,
  ctx: CallContext,
  isClient: boolean,
  key: MetadataKey<string>,
  o: Resolved,
  networkService: string,
): string {
  const md = metadataOf(ctx, isClient);
  const name = given || md.load(key) || o.interfaceName || o.generate(networkService);
  md.store(key, name);
  return name;
}

/** Ensures a KERNEL/LOCAL preference with `inodeURL` and `name` (upstream `kernel.NewClient`). */
export function kernelMechanismClient(options: Readonly<KernelMechanismOptions> = {}): NetworkServiceElement {
  const o = resolve(options);
  const nameKey = createMetadataKey<string>("kernelMechanismClient.name");
  return {
    name: "kernelMechanismClient",
    async request(req, ctx, next) {
      const conn = requestConnection(req);
      const kernelPrefs = req.mechanismPreferences.filter(isKernel);
      const current = isKernel(conn.mechanism) ? conn.mechanism : undefined;
      const given = kernelPrefs.map((m) => m.parameters[Param.NAME]).find(Boolean) ?? current?.parameters[Param.NAME];
      const name = chooseName(given, ctx, true, nameKey, o, conn.networkService);
      const complete = (m: Mechanism): Mechanism => {
        const c = clone(MechanismSchema, m);
        c.parameters[Param.INODE_URL] = o.inodeUrl;
        if (!c.parameters[Param.NAME]) c.parameters[Param.NAME] = name;
        return c;
      };
      const mechanismPreferences = kernelPrefs.length
        ? req.mechanismPreferences.map((m) => (isKernel(m) ? complete(m) : m))
        : [...req.mechanismPreferences, complete(newMechanism(Cls.LOCAL, MechanismType.KERNEL))];
      return next.request({ ...req, mechanismPreferences }, ctx);
    },
    close(conn: Connection, ctx, next) {
      metadataOf(ctx, true).delete(nameKey);
      return next.close(conn, ctx);
    },
  };
}

/** Sets `inodeURL` and `name` on a selected KERNEL mechanism (upstream `kernel.NewServer`). */
export function kernelMechanismServer(options: Readonly<KernelMechanismOptions> = {}): NetworkServiceElement {
  const o = resolve(options);
  const nameKey = createMetadataKey<string>("kernelMechanismServer.name");
  return {
    name: "kernelMechanismServer",
    requires: ["metadata"],
    request(req, ctx, next) {
      const mech = req.connection?.mechanism;
      if (!req.connection || !isKernel(mech)) return next.request(req, ctx);
      const connection = clone(ConnectionSchema, req.connection);
      const m = connection.mechanism!;
      m.parameters[Param.INODE_URL] = o.inodeUrl;
      m.parameters[Param.NAME] = chooseName(
        m.parameters[Param.NAME],
        ctx,
        false,
        nameKey,
        o,
        connection.networkService,
      );
      return next.request({ ...req, connection }, ctx);
    },
    close(conn, ctx, next) {
      metadataOf(ctx, false).delete(nameKey);
      return next.close(conn, ctx);
    },
  };
}
