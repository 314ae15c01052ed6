// SPDX-License-Identifier: Apache-2.0
/**
 * Everything a kernel forwarder plugs into `createForwarder`, in one call: the local veth
 * cross-connect, and, given a tunnel IP, the VXLAN and WireGuard mechanisms with their kernel
 * data plane, plus mechanism priority.
 *
 * ```ts
 * const ownership = netnsOwnership({ resolveIdentity, log }); // src/security/networkservice
 * const fwd = await kernelForwarderElements({ kernel, netnsOwnership: ownership, tunnelIp: "198.18.0.1", owner: name, reconcileGraceMs: 600_000 });
 * const forwarder = createForwarder({ name, nsRegistry, nseRegistry, ...fwd });
 * // on shutdown: forwarder.dispose(); await fwd.dispose();
 * ```
 *
 * Secure by construction: `netnsOwnership` is required; its server element goes first in
 * `additional`, its check into every cross-connect. Only an explicit
 * `insecureNetnsOwnership()` (or the security package's insecure mode) turns the check off.
 *
 * Every interface is tagged with `owner` (the forwarder's name), and the endpoint's interface is
 * named after the connection id (`../stablename/`), so that a restarted forwarder asks for the
 * same one. With `reconcileGraceMs`, the links and wireguard-go processes an earlier life of
 * this forwarder left (it was killed) are found before this resolves, and their VNIs and
 * WireGuard ports are held for them; those whose connection is Requested within the grace
 * period are re-adopted, the others deleted when it ends (`../reconcile/`).
 */
import { MechanismType } from "../../../api/index.js";
import { type NetworkServiceElement, passThrough } from "../../../sdk/core/chain.js";
import { Code, invalidArgument, NsmError } from "../../../sdk/core/errors.js";
import { type Logger, silentLogger } from "../../../sdk/core/logger.js";
import { mechanismPriorityClient } from "../../../sdk/networkservice/common/mechanismpriority/index.js";
import type { MechanismElements } from "../../../sdk/networkservice/common/mechanisms/index.js";
import { recvFdClient, recvFdServer } from "../../../sdk/networkservice/common/recvfd/index.js";
import {
  createVniRegistry,
  DEFAULT_VXLAN_PORT,
  type VniRegistry,
  vxlanClient,
  vxlanServer,
} from "../../../sdk/networkservice/common/vxlan/index.js";
import {
  createPortPool,
  DEFAULT_WIREGUARD_PORT,
  DEFAULT_WIREGUARD_PORT_COUNT,
  type PortPool,
  wireguardClient,
  wireguardServer,
} from "../../../sdk/networkservice/common/wireguard/index.js";
import { formatIp, tryParseIp } from "../../../sdk/tools/cidr.js";
import type { KernelApi, NetnsPath } from "../../api.js";
import { policyRoutesServer } from "../pbr/server.js";
import {
  createReconciler,
  type ReconcileReport,
  type Reconciler,
  type ReconcilerOptions,
  type ReconcileScan,
} from "../reconcile/reconcile.js";
import { kernelRemoteXconnectClient } from "../remote/client.js";
import { kernelRemoteXconnectServer, type RemoteWireguardOptions } from "../remote/server.js";
import { stableKernelMechanismClient } from "../stablename/client.js";
import { kernelXconnectClient } from "../veth/client.js";
import { kernelXconnectServer } from "../veth/server.js";
import {
  createWireguardGoRunner,
  generateWireguardKeyPair,
  type WireguardRunner,
  wireguardPublicKey,
} from "../wireguard/wireguard-go.js";
import { PendingDeletions } from "../xconnect/deletions.js";
import { acceptReceivedNetns, type NetnsOwnershipCheck, requireNetnsOwnership } from "../xconnect/ownership.js";
import { checkTagOwner, DEFAULT_TAG_OWNER } from "../xconnect/tag.js";

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
  /**
   * The netns-ownership check (required): its server element is put before the cross-connects,
   * its check called by them. `insecureNetnsOwnership()` is the explicit way to turn it off.
   */
  netnsOwnership: NetnsOwnershipCheck;
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
  /** Server elements before endpoint selection (the forwarder chain's `first`). */
  first: NetworkServiceElement[];
  additional: NetworkServiceElement[];
  additionalClient: NetworkServiceElement[];
  /** The underlay MTU in use (undefined without a tunnel IP). */
  underlayMtu: number | undefined;
  /** This forwarder's WireGuard public key, base64 (undefined when WireGuard is off). */
  wireguardPublicKey: string | undefined;
  /** Present when started with `reconcileGraceMs`. */
  reconciliation: KernelForwarderReconciliation | undefined;
  /** The link deletions Close left to finish in the background (`../xconnect/deletions.ts`). */
  deletions: PendingDeletions;
  /**
   * Waits for the link deletions in flight, stops the wireguard-go processes (by PID) and
   * disarms the sweep. Idempotent.
   */
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

/** The options that need checking before anything is built (InvalidArgument). */
function checkedOptions(options: Readonly<KernelForwarderElementsOptions>) {
  if (!options.kernel) throw invalidArgument("kernelForwarderElements: the kernel option is required");
  const owner = options.owner ?? DEFAULT_TAG_OWNER;
  checkTagOwner(owner);
  const ownership = acceptReceivedNetns(requireNetnsOwnership(options.netnsOwnership, "kernelForwarderElements"));
  const graceMs = options.reconcileGraceMs;
  if (graceMs !== undefined && (!Number.isFinite(graceMs) || graceMs < 0)) {
    throw invalidArgument(`kernelForwarderElements: reconcileGraceMs must be a duration ≥ 0, got ${graceMs}`);
  }
  const tunnelIp = options.tunnelIp;
  if (tunnelIp !== undefined && !tryParseIp(tunnelIp))
    throw invalidArgument(`kernelForwarderElements: tunnel IP ${JSON.stringify(tunnelIp)} is not an IP address`);
  return { owner, ownership, graceMs };
}

/** A tunnel mechanism's client and server elements. */
interface TunnelMechanism {
  client: NetworkServiceElement;
  server: NetworkServiceElement;
}

/** WireGuard, unless turned off: its mechanism, its port pool, and the remote cross-connect's WireGuard options. */
async function wireguardTunnels(
  options: Readonly<KernelForwarderElementsOptions>,
  tunnelIp: string,
  underlayMtu: number,
  log: Logger,
): Promise<(TunnelMechanism & { ports: PortPool; publicKey: string; remote: RemoteWireguardOptions }) | undefined> {
  const w = options.wireguard === false ? undefined : (options.wireguard ?? {});
  if (!w) return undefined;
  if (!w.runner && !w.launcher?.length && !(await isOwnNetns(options.kernel, options.tunnelNetns))) {
    throw invalidArgument(
      "kernelForwarderElements: wireguard-go runs in this process's netns, not the tunnel netns: " +
        "run the forwarder in the node's netns, or give wireguard.launcher",
    );
  }
  const privateKey = w.privateKey ?? generateWireguardKeyPair().privateKey;
  const publicKey = wireguardPublicKey(privateKey).toString("base64");
  const first = w.port ?? DEFAULT_WIREGUARD_PORT;
  const ports = createPortPool(first, w.portCount ?? Math.min(DEFAULT_WIREGUARD_PORT_COUNT, 0x10000 - first));
  const common = { tunnelIp, publicKey, ports, underlayMtu };
  return {
    client: wireguardClient({ ...common, payloads: w.payloads }),
    server: wireguardServer(common),
    ports,
    publicKey,
    remote: {
      runner: w.runner ?? createWireguardGoRunner({ binary: w.binary, launcher: w.launcher, log }),
      privateKey,
      persistentKeepaliveS: w.persistentKeepaliveS,
    },
  };
}

/** VXLAN, unless turned off: its mechanism and the VNI registry. */
function vxlanTunnels(
  options: Readonly<KernelForwarderElementsOptions>,
  tunnelIp: string,
  underlayMtu: number,
): (TunnelMechanism & { vnis: VniRegistry }) | undefined {
  if (options.vxlanPort === false) return undefined;
  const vnis = createVniRegistry();
  const common = { tunnelIp, port: options.vxlanPort ?? DEFAULT_VXLAN_PORT, underlayMtu, vnis };
  return { client: vxlanClient({ ...common, payloads: options.vxlanPayloads }), server: vxlanServer(common), vnis };
}

/**
 * The kernel forwarder's mechanisms and data-plane elements (see the module doc). Checks the
 * tunnel IP against the tunnel netns and learns the underlay MTU, hence async.
 */
export async function kernelForwarderElements(
  options: Readonly<KernelForwarderElementsOptions>,
): Promise<KernelForwarderElements> {
  const { kernel, tunnelIp, tunnelNetns } = options;
  const { owner, ownership, graceMs } = checkedOptions(options);
  const log = options.log ?? silentLogger;
  // The reconciler is built first (the elements report Requests to it) and started last, once
  // the VNI registry and the port pool it fills exist, before anything is served.
  const reconcilerOf = (parts: Pick<ReconcilerOptions, "runner" | "vnis" | "ports">) =>
    graceMs === undefined ? undefined : createReconciler({ kernel, owner, graceMs, log, ...parts });
  const deletions = new PendingDeletions();
  const xconnect = { kernel, checkNetns: ownership.check, owner, deletions };
  const serverMechanisms: Record<string, NetworkServiceElement> = { [MechanismType.KERNEL]: passThrough("kernel") };
  // The endpoint's interface name derives from the connection id: the same in every life.
  const clientMechanisms: Record<string, NetworkServiceElement> = {
    [MechanismType.KERNEL]: stableKernelMechanismClient(),
  };
  const result: KernelForwarderElements = {
    serverMechanisms,
    clientMechanisms,
    // Namespaces passed as descriptors (upstream's grpcfd) come first / go last, see recvfd:
    // before endpoint selection, which runs the rest once per candidate (a descriptor arrives
    // once per call). A local endpoint is dialed directly (nsmgr's localbypass), so the
    // endpoint's descriptor must be the netns of the process that sent it.
    // pbr acts after the cross-connects below have built the client's interface (it wraps them).
    first: [recvFdServer()],
    additional: [ownership.server, policyRoutesServer({ kernel })],
    additionalClient: [kernelXconnectClient()],
    underlayMtu: undefined,
    wireguardPublicKey: undefined,
    reconciliation: undefined,
    deletions,
    dispose: () => deletions.drain(),
  };
  const priority = mechanismPriorityClient({ priorities: options.mechanismPriority ?? [] });
  if (tunnelIp === undefined) {
    const reconciler = reconcilerOf({});
    result.additional.push(kernelXconnectServer({ ...xconnect, reconciler }));
    result.additionalClient.push(priority, recvFdClient({ requireSenderNetns: true }));
    return await started(result, reconciler);
  }
  const underlayMtu = options.underlayMtu ?? (await underlayOf(kernel, tunnelNetns, tunnelIp));
  const wireguard = await wireguardTunnels(options, tunnelIp, underlayMtu, log);
  const vxlan = vxlanTunnels(options, tunnelIp, underlayMtu);
  for (const [type, tunnel] of [
    [MechanismType.WIREGUARD, wireguard],
    [MechanismType.VXLAN, vxlan],
  ] as const) {
    if (!tunnel) continue;
    clientMechanisms[type] = tunnel.client;
    serverMechanisms[type] = tunnel.server;
  }
  result.underlayMtu = underlayMtu;
  result.wireguardPublicKey = wireguard?.publicKey;
  const reconciler = reconcilerOf({ runner: wireguard?.remote.runner, vnis: vxlan?.vnis, ports: wireguard?.ports });
  const remote = kernelRemoteXconnectServer({ ...xconnect, tunnelNetns, wireguard: wireguard?.remote, reconciler });
  result.additional.push(kernelXconnectServer({ ...xconnect, reconciler }), remote);
  result.additionalClient.push(kernelRemoteXconnectClient(), priority, recvFdClient({ requireSenderNetns: true }));
  let disposed: Promise<void> | undefined;
  result.dispose = () => {
    disposed ??= (async () => {
      await deletions.drain();
      await remote.dispose();
      await wireguard?.remote.runner.dispose();
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
