// SPDX-License-Identifier: Apache-2.0
/**
 * Who is on the other end of a unix socket: the Workload API's caller attestation.
 *
 * SPIRE reads the caller's pid with `getsockopt(SO_PEERCRED)`. Node has no API for that, and
 * `/proc/net/unix` lists sockets without their peers, so the lookup goes:
 * 1. the accepted socket's fd (`socket._handle.fd`) → `/proc/self/fd/<fd>` → `socket:[<inode>]`;
 * 2. the peer's inode from the kernel's socket diagnostics (`NETLINK_SOCK_DIAG`,
 *    `SOCK_DIAG_BY_FAMILY` for `AF_UNIX` with `UDIAG_SHOW_PEER`; what `ss -xp` uses), sent
 *    through the project's netlink addon. Diagnostics only see the sockets of their network
 *    namespace, and the kernel creates the accepted end in the connecting process's namespace,
 *    so a caller from another namespace (a pod) is looked up in the named namespaces too;
 * 3. every process holding that inode: `/proc/<pid>/fd/*` links equal to `socket:[<peer inode>]`.
 *
 * Step 3 first asks the addon for the connecting process (`SO_PEERCRED`, what SPIRE's agent
 * attests) and keeps it alone when its own fd table still holds the client end (so a pid reused
 * after the connector exited is not taken for it). Otherwise (the connection was handed on and
 * the connector closed its end, or the addon is missing) it reads every process's fd table,
 * which needs root (CAP_SYS_PTRACE / same uid; run the Workload API server as root, as a SPIRE
 * agent runs) and takes seconds on a busy node: every pid holding the client end now, which the
 * server then requires to resolve to the same identity.
 */
import { readdir, readlink, stat } from "node:fs/promises";
import type { Socket } from "node:net";
import { unavailable } from "../../sdk/core/errors.js";
import { loadFdBinding } from "../../sdk/grpc/fdnative.js";

const NETLINK_SOCK_DIAG = 4;
const SOCK_DIAG_BY_FAMILY = 20;
const NLM_F_REQUEST = 0x1;
const AF_UNIX = 1;
const UDIAG_SHOW_PEER = 0x4;
const UNIX_DIAG_PEER = 2;
const NO_COOKIE = 0xffffffff;

/**
 * Sends one netlink request and returns the reply payloads (after the nlmsghdr); in the network
 * namespace at path `netns` when given (socket diagnostics only see the sockets of their netns).
 */
export type NetlinkRequester = (
  protocol: number,
  type: number,
  flags: number,
  body: Buffer,
  netns?: string,
) => Promise<Buffer[]>;

/**
 * The netlink requester backed by the project's addon (`src/kernel`), loaded on first use so
 * that nothing needs the addon until a Workload API server identifies a caller.
 */
export function addonNetlinkRequester(): { request: NetlinkRequester; close(): Promise<void> } {
  type Socket = import("../../kernel/netlink.js").NetlinkSocket;
  const sockets = new Map<number, Promise<Socket>>();
  const open = (protocol: number): Promise<Socket> => {
    let s = sockets.get(protocol);
    if (!s) {
      s = import("../../kernel/netlink.js").then((k) => k.openNetlinkSocket(k.SELF_NETNS, protocol));
      sockets.set(protocol, s);
      s.catch(() => sockets.delete(protocol));
    }
    return s;
  };
  return {
    async request(protocol, type, flags, body, netns) {
      if (netns === undefined) {
        const msgs = await (await open(protocol)).request({ type, flags, body }, "socket diagnostics");
        return msgs.map((m) => m.payload);
      }
      // Another namespace: a socket for this request only (a kept socket would keep the netns alive).
      const k = await import("../../kernel/netlink.js");
      const socket = await k.openNetlinkSocket(netns, protocol);
      try {
        const msgs = await socket.request({ type, flags, body }, "socket diagnostics");
        return msgs.map((m) => m.payload);
      } finally {
        await socket.close();
      }
    },
    async close() {
      for (const s of sockets.values()) await s.then((x) => x.close()).catch(() => {});
      sockets.clear();
    },
  };
}

/** The inode of a socket's fd (`/proc/self/fd/<fd>` → `socket:[N]`). */
async function inodeOfFd(pidDir: string, fd: number | string): Promise<number | undefined> {
  try {
    const m = /^socket:\[(\d+)\]$/.exec(await readlink(`${pidDir}/fd/${fd}`));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** The fd of an accepted net.Socket (libuv pipe handle). */
function fdOf(socket: Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  if (typeof fd !== "number" || fd < 0) throw unavailable("cannot read the fd of the accepted unix socket");
  return fd;
}

/**
 * The inode of the peer of the unix socket `inode`, from NETLINK_SOCK_DIAG (asked in `netns`, or
 * in this process's namespace); undefined when that namespace has no such socket.
 */
export async function unixPeerInode(
  request: NetlinkRequester,
  inode: number,
  netns?: string,
): Promise<number | undefined> {
  const body = Buffer.alloc(24);
  body.writeUInt8(AF_UNIX, 0);
  body.writeUInt32LE(0xffffffff, 4); // every state
  body.writeUInt32LE(inode, 8);
  body.writeUInt32LE(UDIAG_SHOW_PEER, 12);
  body.writeUInt32LE(NO_COOKIE, 16);
  body.writeUInt32LE(NO_COOKIE, 20);
  let payloads: Buffer[];
  try {
    payloads = await request(NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST, body, netns);
  } catch (err) {
    if ((err as { reason?: string }).reason === "ENOENT") return undefined;
    throw err;
  }
  for (const payload of payloads) {
    if (payload.length < 16 || payload.readUInt32LE(4) !== inode) continue;
    const peer = peerAttribute(payload);
    if (peer !== undefined) return peer;
  }
  return undefined;
}

/** The UNIX_DIAG_PEER attribute (the peer's inode) of a unix_diag_msg, if it has one. */
function peerAttribute(payload: Buffer): number | undefined {
  for (let off = 16; off + 4 <= payload.length; ) {
    const len = payload.readUInt16LE(off);
    const type = payload.readUInt16LE(off + 2);
    if (len < 4) break;
    if (type === UNIX_DIAG_PEER && len >= 8) return payload.readUInt32LE(off + 4);
    off += (len + 3) & ~3;
  }
  return undefined;
}

/** Every pid with an fd on socket `inode` (needs root for other users' processes). */
export async function pidsHoldingSocket(inode: number): Promise<number[]> {
  const target = `socket:[${inode}]`;
  const pids: number[] = [];
  const entries = await readdir("/proc");
  await Promise.all(
    entries
      .filter((e) => /^\d+$/.test(e))
      .map(async (pid) => {
        let fds: string[];
        try {
          fds = await readdir(`/proc/${pid}/fd`);
        } catch {
          return;
        }
        for (const fd of fds) {
          try {
            if ((await readlink(`/proc/${pid}/fd/${fd}`)) === target) {
              pids.push(Number(pid));
              return;
            }
          } catch {
            // The fd closed meanwhile, or the process is gone.
          }
        }
      }),
  );
  return pids.sort((a, b) => a - b);
}

/** Finds the pids on the other end of an accepted unix socket. */
export type UnixPeerLookup = (socket: Socket) => Promise<number[]>;

/** Named network namespaces (`ip netns`), most recently created first. */
export async function namedNetns(dir = "/run/netns"): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const withTime = await Promise.all(
    names.map(async (n) => {
      try {
        return { path: `${dir}/${n}`, t: (await stat(`${dir}/${n}`)).ctimeMs };
      } catch {
        return undefined;
      }
    }),
  );
  return withTime
    .filter((x): x is { path: string; t: number } => x !== undefined)
    .sort((a, b) => b.t - a.t)
    .map((x) => x.path);
}

export interface UnixPeerLookupOptions {
  /**
   * Network namespaces to look in when the connection's socket is not in this process's (the
   * kernel creates the accepted end in the *connecting* process's namespace).
   * @default the named namespaces ({@link namedNetns})
   */
  readonly otherNetns?: () => Promise<readonly string[]>;
}

/** The peer of socket `inode` found in the first of `namespaces` that has it. */
async function peerInOtherNetns(
  request: NetlinkRequester,
  inode: number,
  namespaces: readonly string[],
): Promise<number | undefined> {
  for (const netns of namespaces) {
    try {
      const peer = await unixPeerInode(request, inode, netns);
      if (peer !== undefined) return peer;
    } catch {
      // the namespace went away meanwhile
    }
  }
  return undefined;
}

/** The connecting process of an accepted unix socket (SO_PEERCRED through the addon); undefined without the addon. */
function connectingPid(fd: number): number | undefined {
  try {
    const pid = loadFdBinding().peerCred(fd).pid;
    return pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Whether process `pid` has an fd on socket `inode` now. */
async function holdsSocket(pid: number, inode: number): Promise<boolean> {
  const target = `socket:[${inode}]`;
  let fds: string[];
  try {
    fds = await readdir(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  for (const fd of fds) {
    if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "")) === target) return true;
  }
  return false;
}

/**
 * The default lookup: fd → inode → peer inode (sock_diag, in this namespace, then in the
 * connecting process's, then in the others) → pids. The pids are the connecting process's alone
 * (SO_PEERCRED, what SPIRE attests) when it still holds the client end (its own fd table is read,
 * so a pid reused after the connector exited is not taken for it); otherwise (it passed the
 * connection on and closed its end, or the addon is missing) every holder, from the /proc scan,
 * which costs a walk of every process's fd table (most of an SVID fetch on a node with thousands
 * of processes).
 */
export function createUnixPeerLookup(
  request: NetlinkRequester,
  options: Readonly<UnixPeerLookupOptions> = {},
): UnixPeerLookup {
  const others = options.otherNetns ?? (() => namedNetns());
  return async (socket) => {
    const fd = fdOf(socket);
    const inode = await inodeOfFd("/proc/self", fd);
    if (inode === undefined) throw unavailable("the accepted connection is not a socket fd");
    const connector = connectingPid(fd);
    const peer =
      (await unixPeerInode(request, inode)) ??
      (connector === undefined ? undefined : await peerInNetnsOf(request, inode, connector)) ??
      (await peerInOtherNetns(request, inode, await others()));
    if (peer === undefined) return [];
    if (connector !== undefined && (await holdsSocket(connector, peer))) return [connector];
    return pidsHoldingSocket(peer);
  };
}

/** The peer of socket `inode` looked up in the network namespace of process `pid`. */
async function peerInNetnsOf(request: NetlinkRequester, inode: number, pid: number): Promise<number | undefined> {
  try {
    return await unixPeerInode(request, inode, `/proc/${pid}/ns/net`);
  } catch {
    return undefined;
  }
}
