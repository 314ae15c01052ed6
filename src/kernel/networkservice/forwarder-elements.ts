// SPDX-License-Identifier: Apache-2.0
/**
 * Everything a kernel forwarder plugs into `createForwarder`, in one call: the local veth
 * cross-connect, and, given a tunnel IP, the VXLAN and WireGuard mechanisms with their kernel
 * data plane, plus mechanism priority.
 *
 * ```ts
 * const fwd = await kernelForwarderElements({ kernel, tunnelIp: "198.18.0.1", owner: name, reconcileGraceMs: 600_000 });
 * const forwarder = createForwarder({ name, nsRegistry, nseRegistry, ...fwd });
 * // on shutdown: forwarder.dispose(); await fwd.dispose();
 * ```
 *
 * Every interface is tagged with `owner` (the forwarder's name), and the endpoint's interface is
 * named after the connection id (`stable-name.ts`), so that a restarted forwarder asks for the
 * same one. With `reconcileGraceMs`, the links and wireguard-go processes an earlier life of
 * this forwarder left (it was killed) are found before this resolves, and their VNIs and
 * WireGuard ports are held for them; those whose connection is Requested within the grace
 * period are re-adopted, the others deleted when it ends (`reconcile.ts`).
 */
import { MechanismType } from "../../api/index.js";
import { type NetworkServiceElement, passThrough } from "../../sdk/core/chain.js";
import { Code, invalidArgument, NsmError } from "../../sdk/core/errors.js";
import { type Logger, silentLogger } from "../../sdk/core/logger.js";
import { mechanismPriorityClient } from "../../sdk/networkservice/common/mechanismpriority/index.js";
import type { MechanismElements } from "../../sdk/networkservice/common/mechanisms/index.js";
import {
  createVniRegistry,
  DEFAULT_VXLAN_PORT,
  vxlanClient,
  vxlanServer,
} from "../../sdk/networkservice/common/vxlan/index.js";
import {
  createPortPool,
  DEFAULT_WIREGUARD_PORT,
  DEFAULT_WIREGUARD_PORT_COUNT,
  type PortPool,
  wireguardClient,
  wireguardServer,
} from "../../sdk/networkservice/common/wireguard/index.js";
import { formatIp, tryParseIp } from "../../sdk/tools/cidr.js";
import type { KernelApi, NetnsPath } from "../api.js";
import { kernelXconnectClient } from "./client.js";
import type { NetnsCheck } from "./options.js";
import {
  createReconciler,
  type ReconcileReport,
  type Reconciler,
  type ReconcilerOptions,
  type ReconcileScan,
} from "./reconcile.js";
import { kernelRemoteXconnectClient, kernelRemoteXconnectServer } from "./remote.js";
import { kernelXconnectServer } from "./server.js";
import { stableKernelMechanismClient } from "./stable-name.js";
import { checkTagOwner, DEFAULT_TAG_OWNER } from "./tag.js";
import {
  createWireguardGoRunner,
  generateWireguardKeyPair,
  type WireguardRunner,
  wireguardPublicKey,
} from "./wireguard-go.js";

export interface WireguardForwarderOptions {
  /** First UDP port of the per-connection range (`NSM_WIREGUARD_PORT`). @default 51820 */
  port?: number;
  /** How many ports (= WireGuard tunnels on this node). @default 1000 */
  portCount?: number;
  /** This forwarder's raw 32-byte private key. @default a new key pair per forwarder start */
  privateKey?: Buffer;
  /** Payloads WireGuard is offered for. @default ["IP"] */
  payloads?: readonly string[];
  /** @default 25 */
  persistentKeepaliveS?: number;
  /** wireguard-go binary. @default "/usr/bin/wireguard-go" */
  binary?: string;
  /**
   * Command prefix that runs wireguard-go in `tunnelNetns` when that is not this process's
   * netns (e.g. `["nsenter", "--net=/var/run/netns/node1"]`; it must exec, not fork).
   * @default none; then `tunnelNetns` must be this process's netns
   */
  launcher?: readonly string[];
  /** Replaces the wireguard-go runner (tests). */
  runner?: WireguardRunner;
}

export interface KernelForwarderElementsOptions {
  kernel: KernelApi;
  /**
   * This node's tunnel address (`NSM_TUNNEL_IP`); it must be an address of `tunnelNetns`.
   * @default none: only local (veth) connections
   */
  tunnelIp?: string;
  /** The node's netns, where tunnel sockets live. @default this process's netns */
  tunnelNetns?: NetnsPath;
  /** MTU of the underlay. @default the MTU of the interface holding `tunnelIp` */
  underlayMtu?: number;
  /** VXLAN UDP port (`NSM_VXLAN_PORT`), the same on every node; `false` turns VXLAN off. @default 4789 */
  vxlanPort?: number | false;
  /** Payloads VXLAN is offered for. @default ["ETHERNET"] */
  vxlanPayloads?: readonly string[];
  /** WireGuard over wireguard-go; `false` turns it off. @default on, with the defaults of {@link WireguardForwarderOptions} */
  wireguard?: WireguardForwarderOptions | false;
  /** Mechanism types, most preferred first (`NSM_MECHANISM_PRIORITY`). @default [] */
  mechanismPriority?: readonly string[];
  /** Netns-ownership hook of both cross-connects. */
  checkNetns?: NetnsCheck;
  /**
   * The forwarder's name (`NSM_NAME`), written into every interface tag; it must be the same
   * across restarts and differ from every other forwarder sharing the kernel. @default "forwarder"
   */
  owner?: string;
  /**
   * Reconciliation after a restart (`NSM_RECONCILE_GRACE`): how long, in ms, the interfaces and
   * wireguard-go processes of an earlier life tagged with `owner` wait for their connection to be
   * Requested again (re-adopted) before they are deleted. Live connections are refreshed before
   * their tokens expire, so the longest token lifetime is the natural value. @default off: what an
   * earlier life left is re-adopted when Requested, never swept
   */
  reconcileGraceMs?: number;
  log?: Logger;
}

/** Reconciliation of a forwarder started with `reconcileGraceMs`. */
export interface KernelForwarderReconciliation {
  /** What an earlier life left: the candidates. */
  found: ReconcileScan;
  /** Resolves once the grace period is over and the candidates not Requested are deleted. */
  swept: Promise<ReconcileReport>;
  /** Sweeps now, without waiting for the end of the grace period. */
  sweep(): Promise<ReconcileReport>;
}

/** The `createForwarder` options this module fills, and what it started. */
export interface KernelForwarderElements {
  serverMechanisms: MechanismElements;
  clientMechanisms: MechanismElements;
  additional: NetworkServiceElement[];
  additionalClient: NetworkServiceElement[];
  /** The underlay MTU in use (undefined without a tunnel IP). */
  underlayMtu: number | undefined;
  /** This forwarder's WireGuard public key, base64 (undefined when WireGuard is off). */
  wireguardPublicKey: string | undefined;
  /** Present when started with `reconcileGraceMs`. */
  reconciliation: KernelForwarderReconciliation | undefined;
  /** Stops the wireguard-go processes (by PID) and disarms the sweep. Idempotent. */
  dispose(): Promise<void>;
}

/** The MTU of the link of `netns` that holds `ip`; FailedPrecondition when none does. */
async function underlayOf(kernel: KernelApi, netns: NetnsPath, ip: string): Promise<number> {
  const want = formatIp(tryParseIp(ip)!);
  const family = want.includes(":") ? 6 : 4;
  const found = (await kernel.listAddresses(netns, { family })).find((a) => a.address === want);
  if (!found) {
    throw new NsmError(
      `tunnel IP ${ip} is not an address of the tunnel netns${netns ? ` ${netns}` : ""} (NSM_TUNNEL_IP)`,
      Code.FailedPrecondition,
      { reason: "tunnel-ip" },
    );
  }
  return (await kernel.getLink(netns, found.linkIndex)).mtu;
}

async function isOwnNetns(kernel: KernelApi, netns: NetnsPath): Promise<boolean> {
  if (!netns) return true;
  const [a, b] = await Promise.all([kernel.netnsId(netns), kernel.netnsId(undefined)]);
  return a.dev === b.dev && a.ino === b.ino;
}

/**
 * The kernel forwarder's mechanisms and data-plane elements (see the module doc). Checks the
 * tunnel IP against the tunnel netns and learns the underlay MTU, hence async.
 */
export async function kernelForwarderElements(
  options: Readonly<KernelForwarderElementsOptions>,
): Promise<KernelForwarderElements> {
  const { kernel, tunnelIp, tunnelNetns } = options;
  if (!kernel) throw invalidArgument("kernelForwarderElements: the kernel option is required");
  const log = options.log ?? silentLogger;
  const owner = options.owner ?? DEFAULT_TAG_OWNER;
  checkTagOwner(owner);
  const graceMs = options.reconcileGraceMs;
  if (graceMs !== undefined && (!Number.isFinite(graceMs) || graceMs < 0)) {
    throw invalidArgument(`kernelForwarderElements: reconcileGraceMs must be a duration ≥ 0, got ${graceMs}`);
  }
  const serverMechanisms: Record<string, NetworkServiceElement> = { [MechanismType.KERNEL]: passThrough("kernel") };
  const clientMechanisms: Record<string, NetworkServiceElement> = {
    // The endpoint's interface name derives from the connection id: the same in every life.
    [MechanismType.KERNEL]: stableKernelMechanismClient(),
  };
  // The reconciler is built first (the elements report Requests to it) and started last, once
  // the VNI registry and the port pool it fills exist, before anything is served.
  const reconcilerOf = (parts: Pick<ReconcilerOptions, "runner" | "vnis" | "ports">) =>
    graceMs === undefined ? undefined : createReconciler({ kernel, owner, graceMs, log, ...parts });
  const xconnect = { kernel, checkNetns: options.checkNetns, owner };
  const result: KernelForwarderElements = {
    serverMechanisms,
    clientMechanisms,
    additional: [],
    additionalClient: [kernelXconnectClient()],
    underlayMtu: undefined,
    wireguardPublicKey: undefined,
    reconciliation: undefined,
    dispose: async () => {},
  };
  const { additional, additionalClient } = result;
  const priority = mechanismPriorityClient({ priorities: options.mechanismPriority ?? [] });
  if (tunnelIp === undefined) {
    const reconciler = reconcilerOf({});
    additional.push(kernelXconnectServer({ ...xconnect, reconciler }));
    additionalClient.push(priority);
    return await started(result, reconciler);
  }
  if (!tryParseIp(tunnelIp))
    throw invalidArgument(`kernelForwarderElements: tunnel IP ${JSON.stringify(tunnelIp)} is not an IP address`);
  const underlayMtu = options.underlayMtu ?? (await underlayOf(kernel, tunnelNetns, tunnelIp));
  result.underlayMtu = underlayMtu;

  const w = options.wireguard === false ? undefined : (options.wireguard ?? {});
  let wireguard: Parameters<typeof kernelRemoteXconnectServer>[0]["wireguard"];
  let ports: PortPool | undefined;
  let vnis: ReturnType<typeof createVniRegistry> | undefined;
  if (w) {
    if (!w.runner && !w.launcher?.length && !(await isOwnNetns(kernel, tunnelNetns))) {
      throw invalidArgument(
        "kernelForwarderElements: wireguard-go runs in this process's netns, not the tunnel netns: " +
          "run the forwarder in the node's netns, or give wireguard.launcher",
      );
    }
    const privateKey = w.privateKey ?? generateWireguardKeyPair().privateKey;
    const publicKey = wireguardPublicKey(privateKey).toString("base64");
    const first = w.port ?? DEFAULT_WIREGUARD_PORT;
    ports = createPortPool(first, w.portCount ?? Math.min(DEFAULT_WIREGUARD_PORT_COUNT, 0x10000 - first));
    const common = { tunnelIp, publicKey, ports, underlayMtu };
    clientMechanisms[MechanismType.WIREGUARD] = wireguardClient({ ...common, payloads: w.payloads });
    serverMechanisms[MechanismType.WIREGUARD] = wireguardServer(common);
    wireguard = {
      runner: w.runner ?? createWireguardGoRunner({ binary: w.binary, launcher: w.launcher, log }),
      privateKey,
      persistentKeepaliveS: w.persistentKeepaliveS,
    };
    result.wireguardPublicKey = publicKey;
  }
  if (options.vxlanPort !== false) {
    vnis = createVniRegistry();
    const common = { tunnelIp, port: options.vxlanPort ?? DEFAULT_VXLAN_PORT, underlayMtu, vnis };
    clientMechanisms[MechanismType.VXLAN] = vxlanClient({ ...common, payloads: options.vxlanPayloads });
    serverMechanisms[MechanismType.VXLAN] = vxlanServer(common);
  }
  const reconciler = reconcilerOf({ runner: wireguard?.runner, vnis, ports });
  additional.push(kernelXconnectServer({ ...xconnect, reconciler }));
  const remote = kernelRemoteXconnectServer({ ...xconnect, tunnelNetns, wireguard, reconciler });
  additional.push(remote);
  additionalClient.push(kernelRemoteXconnectClient(), priority);
  let disposed: Promise<void> | undefined;
  result.dispose = () => {
    disposed ??= (async () => {
      await remote.dispose();
      await wireguard?.runner.dispose();
    })();
    return disposed;
  };
  return await started(result, reconciler);
}

/** Runs the reconciler's start scan (when there is one) and exposes it. */
async function started(
  result: KernelForwarderElements,
  reconciler: Reconciler | undefined,
): Promise<KernelForwarderElements> {
  if (!reconciler) return result;
  const found = await reconciler.start();
  result.reconciliation = { found, swept: reconciler.swept, sweep: () => reconciler.sweep() };
  const dispose = result.dispose;
  result.dispose = async () => {
    reconciler.dispose();
    await dispose();
  };
  return result;
}
