// SPDX-License-Identifier: Apache-2.0
/**
 * What a remote connection asks of this forwarder's kernel, as plain data (pure logic): which
 * side is the pod (KERNEL) and which the tunnel (VXLAN / WIREGUARD), our and the peer's tunnel
 * ends, the MTU, and the pod's IP plan.
 */
import { type Connection, type Mechanism, MechanismType, Param } from "../../../api/index.js";
import { Code, invalidArgument, NsmError } from "../../../sdk/core/errors.js";
import { parseVni } from "../../../sdk/networkservice/common/vxlan/index.js";
import { isWireguardKey } from "../../../sdk/networkservice/common/wireguard/index.js";
import { tryParseIp } from "../../../sdk/tools/cidr.js";
import { mechanismMtu, minNonZero } from "../../../sdk/tools/tunnel.js";
import { clientIpPlan, endpointIpPlan } from "../ipcontext/plan.js";
import { isKernel, locatePod, type PodLocation, type PodPlan } from "../xconnect/pod.js";
import { xconnectTag } from "../xconnect/tag.js";
import type { RemotePlan, TunnelPlan } from "./metadata.js";

/** Mechanism types with a kernel tunnel here. */
export const REMOTE_TYPES: ReadonlySet<string> = new Set([MechanismType.VXLAN, MechanismType.WIREGUARD]);

export const isTunnel = (m: Mechanism | undefined): m is Mechanism => m !== undefined && REMOTE_TYPES.has(m.type);

/**
 * The shape of a remote connection at this forwarder, or undefined when it is not one
 * (both sides KERNEL, NOOP, two tunnels…).
 * - server side KERNEL, client side tunnel: the NSC-side forwarder; the pod is the client's and
 *   we are the tunnel's `src` end;
 * - server side tunnel, client side KERNEL: the NSE-side forwarder; the pod is the endpoint's
 *   and we are the `dst` end.
 */
export function remoteShape(
  serverMechanism: Mechanism | undefined,
  clientMechanism: Mechanism | undefined,
): { pod: PodLocation; tunnel: Mechanism; ours: "src" | "dst" } | undefined {
  if (isKernel(serverMechanism) && isTunnel(clientMechanism)) {
    return { pod: locatePod("client", serverMechanism), tunnel: clientMechanism, ours: "src" };
  }
  if (isTunnel(serverMechanism) && isKernel(clientMechanism)) {
    return { pod: locatePod("endpoint", clientMechanism), tunnel: serverMechanism, ours: "dst" };
  }
  return undefined;
}

function param(m: Mechanism, key: string): string {
  return m.parameters[key] ?? "";
}

function address(m: Mechanism, key: string): string {
  const text = param(m, key);
  const ip = tryParseIp(text);
  if (!ip) throw invalidArgument(`${m.type} mechanism: ${key} ${JSON.stringify(text)} is not an IP address`);
  return text;
}

function port(m: Mechanism, key: string): number {
  const text = param(m, key);
  const n = /^\d{1,5}$/.test(text) ? Number(text) : 0;
  if (n < 1 || n > 0xffff)
    throw invalidArgument(`${m.type} mechanism: ${key} ${JSON.stringify(text)} is not a UDP port`);
  return n;
}

/** Our and the peer's tunnel ends from a tunnel mechanism; `ours` says which half is ours. */
export function tunnelPlan(m: Mechanism, ours: "src" | "dst"): TunnelPlan {
  const me = ours === "src" ? { ip: Param.SRC_IP, port: Param.SRC_PORT } : { ip: Param.DST_IP, port: Param.DST_PORT };
  const peer =
    ours === "src"
      ? { ip: Param.DST_IP, port: Param.DST_PORT, key: Param.DST_PUBLIC_KEY }
      : { ip: Param.SRC_IP, port: Param.SRC_PORT, key: Param.SRC_PUBLIC_KEY };
  const local = address(m, me.ip);
  const remote = address(m, peer.ip);
  if (local.includes(":") !== remote.includes(":")) {
    throw invalidArgument(`${m.type} mechanism: src_ip and dst_ip are of different families`);
  }
  if (m.type === MechanismType.VXLAN) {
    const vni = parseVni(m.parameters[Param.VNI]);
    if (vni === 0) throw invalidArgument("VXLAN mechanism: no vni");
    const localPort = port(m, me.port);
    const remotePort = port(m, peer.port);
    if (localPort !== remotePort) {
      // A Linux VXLAN device listens on the port it sends to.
      throw new NsmError(
        `VXLAN mechanism: src_port ${param(m, Param.SRC_PORT)} and dst_port ${param(m, Param.DST_PORT)} differ; ` +
          "the kernel data plane needs the same VXLAN port on every node (NSM_VXLAN_PORT)",
        Code.FailedPrecondition,
        { reason: "vxlan-port-mismatch" },
      );
    }
    return { type: "VXLAN", vni, local, remote, port: localPort };
  }
  const key = param(m, peer.key);
  if (!isWireguardKey(key)) throw invalidArgument(`WIREGUARD mechanism: ${peer.key} is not a base64 32-byte key`);
  return {
    type: "WIREGUARD",
    local,
    listenPort: port(m, me.port),
    remote,
    remotePort: port(m, peer.port),
    peerPublicKey: key,
  };
}

/** The whole plan for one remote connection; the pod's interface is tagged as made by `owner`. */
export function remotePlan(
  conn: Connection,
  shape: { pod: PodLocation; tunnel: Mechanism; ours: "src" | "dst" },
  owner: string,
): RemotePlan {
  const ipc = conn.context?.ipContext;
  const ip = shape.pod.side === "client" ? clientIpPlan(ipc) : endpointIpPlan(ipc);
  const tunnel = tunnelPlan(shape.tunnel, shape.ours);
  const pod: PodPlan = {
    side: shape.pod.side,
    netns: shape.pod.netns,
    netnsId: shape.pod.netnsId,
    name: shape.pod.name,
    tag: xconnectTag(shape.pod.side, conn.id, owner),
    ...ip,
    // A TUN has no link layer: neighbour entries make no sense on it.
    neighbors: tunnel.type === "WIREGUARD" ? [] : ip.neighbors,
  };
  return { pod, tunnel, mtu: minNonZero(conn.context?.MTU ?? 0, mechanismMtu(shape.tunnel)) };
}
