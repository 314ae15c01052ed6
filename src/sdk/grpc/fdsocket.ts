// SPDX-License-Identifier: Apache-2.0
/**
 * Unix stream sockets that carry file descriptors, as upstream NSM's grpcfd does, for the gRPC
 * connections between the local processes of a mesh (NSC, NSE ↔ nsmgr ↔ forwarder).
 *
 * - {@link FdSocket}: a `stream.Duplex` over a connected unix socket. Descriptors given to
 *   {@link FdSocket.sendFds} ride on the next bytes written (one byte per descriptor, `sendmsg`
 *   with `SCM_RIGHTS`), then the sender's copy is closed. Every descriptor that arrives with the
 *   bytes read (`recvmsg`) goes into the socket's {@link FdTable}, keyed by `(st_dev, st_ino)`.
 * - {@link listenFdUnix} / {@link connectFdUnix}: the listening and dialing ends.
 *
 * Node's net module cannot pass descriptors, so the system calls are the addon's
 * (`native/src/fdpass.cc`); readiness comes from a libuv poll handle, everything runs on the JS
 * thread. Written by hand: no maintained npm library passes descriptors on Node 20 streams.
 */
import { closeSync, fstatSync } from "node:fs";
import { Duplex } from "node:stream";
import { loadFdBinding } from "./fdnative.js";

const READ_CHUNK = 64 * 1024;
const EAGAIN = 11;

/** The key of a namespace (or any file): `<st_dev>/<st_ino>` in decimal, as in `inode://dev/ino`. */
export function inodeKeyOfFd(fd: number): string {
  const st = fstatSync(fd, { bigint: true });
  return `${st.dev}/${st.ino}`;
}

interface Waiter {
  resolve(fd: number): void;
  reject(err: Error): void;
}

/**
 * The descriptors received on one connection, keyed by `dev/ino`. A descriptor stays here until
 * taken (the taker then owns it and closes it) or until the connection ends ({@link closeAll}).
 * A second unclaimed descriptor for the same key replaces (closes) the first, so a peer that
 * resends its namespace on every Request does not pile descriptors up.
 *
 * A process may hold several connections to the same peer process (a channel per target, an
 * old one still draining after a reconnect), and a descriptor sent for a call may ride on
 * another of them than the one the call went on (the sender queues descriptors per socket path,
 * and the next call on any of its connections carries them). {@link siblings} lists the tables
 * of those other connections: {@link take} and {@link waitFor} look in them too. Only
 * connections with the same peer pid are siblings, so the sender is the same either way.
 */
export class FdTable {
  /** The pid of the process that sent these descriptors (SO_PEERCRED of the connection), 0 if unknown. */
  peerPid = 0;
  /** The tables of the other live connections to or from the same peer process (see the class doc). */
  siblings: () => Iterable<FdTable> = () => [];
  readonly #fds = new Map<string, number>();
  readonly #waiters = new Map<string, Set<Waiter>>();
  #closed = false;

  /** Files a descriptor that arrived (closes it at once if the connection is already gone). */
  add(fd: number): void {
    let key: string | undefined;
    try {
      key = this.#closed ? undefined : inodeKeyOfFd(fd);
    } catch {
      key = undefined;
    }
    if (key === undefined) {
      closeQuietly(fd);
      return;
    }
    const waiter = this.#waiters.get(key)?.values().next().value;
    if (waiter) {
      this.#waiters.get(key)?.delete(waiter);
      waiter.resolve(fd);
      return;
    }
    const old = this.#fds.get(key);
    if (old !== undefined) closeQuietly(old);
    this.#fds.set(key, fd);
  }

  /** Takes the descriptor for `key` if it has arrived, here or on a sibling (the caller owns it from then on). */
  take(key: string): number | undefined {
    const own = this.#takeOwn(key);
    if (own !== undefined) return own;
    for (const t of this.#liveSiblings()) {
      const fd = t.#takeOwn(key);
      if (fd !== undefined) return fd;
    }
    return undefined;
  }

  /**
   * Takes the descriptor for `key`, waiting for it (here or on a sibling) until `signal` aborts
   * (the call's deadline or cancellation) or every connection looked at ends; rejects then.
   */
  waitFor(key: string, signal: AbortSignal): Promise<number> {
    const now = this.take(key);
    if (now !== undefined) return Promise.resolve(now);
    const others = this.#liveSiblings();
    if (others.length === 0) return this.#waitOwn(key, signal);
    // The first table the descriptor arrives in wins; the other waits are dropped (a second
    // copy arriving in the same turn is closed: the winner already holds that namespace).
    const won = new AbortController();
    const either = AbortSignal.any([signal, won.signal]);
    let winner: number | undefined;
    const waits = [this, ...others].map((t) =>
      t.#waitOwn(key, either).then((fd) => {
        if (winner !== undefined) {
          closeQuietly(fd);
          throw new Error("taken on another connection");
        }
        winner = fd;
        won.abort();
        return fd;
      }),
    );
    return Promise.any(waits).catch(() => {
      throw new Error(signal.aborted ? "no descriptor arrived before the deadline" : "the connection is closed");
    });
  }

  #liveSiblings(): FdTable[] {
    // An unknown peer (pid 0) has no siblings: its descriptors are never shared with another.
    if (this.peerPid <= 0) return [];
    return [...this.siblings()].filter((t) => t !== this && !t.#closed && t.peerPid === this.peerPid);
  }

  #takeOwn(key: string): number | undefined {
    const fd = this.#fds.get(key);
    if (fd !== undefined) this.#fds.delete(key);
    return fd;
  }

  #waitOwn(key: string, signal: AbortSignal): Promise<number> {
    if (this.#closed) return Promise.reject(new Error("the connection is closed"));
    if (signal.aborted) return Promise.reject(new Error("no descriptor arrived before the deadline"));
    return new Promise<number>((resolve, reject) => {
      const set = this.#waiters.get(key) ?? new Set<Waiter>();
      this.#waiters.set(key, set);
      const onAbort = () => {
        set.delete(waiter);
        reject(new Error("no descriptor arrived before the deadline"));
      };
      const waiter: Waiter = {
        resolve: (fd) => {
          signal.removeEventListener("abort", onAbort);
          resolve(fd);
        },
        reject: (err) => {
          signal.removeEventListener("abort", onAbort);
          reject(err);
        },
      };
      set.add(waiter);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** How many received descriptors are held here (not yet taken). */
  get size(): number {
    return this.#fds.size;
  }

  /** Closes every held descriptor and fails every waiter; later arrivals are closed at once. */
  closeAll(): void {
    this.#closed = true;
    for (const fd of this.#fds.values()) closeQuietly(fd);
    this.#fds.clear();
    for (const set of this.#waiters.values()) for (const w of set) w.reject(new Error("the connection is closed"));
    this.#waiters.clear();
  }
}

export function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

interface PendingWrite {
  chunk: Buffer;
  offset: number;
  callback: (err?: Error | null) => void;
}

/** A connected unix socket as a Duplex that also sends and receives descriptors. */
export class FdSocket extends Duplex {
  /** Descriptors received on this connection. */
  readonly fds = new FdTable();
  /** The pid of the process at the other end (SO_PEERCRED), 0 if unknown. */
  readonly peerPid: number;
  #fd: number;
  readonly #poll: unknown;
  readonly #toSend: number[] = [];
  #pending: PendingWrite | undefined;
  #reading = true;
  readonly #buffer = Buffer.allocUnsafe(READ_CHUNK);

  constructor(fd: number) {
    super({ allowHalfOpen: false });
    this.#fd = fd;
    const b = loadFdBinding();
    let pid = 0;
    try {
      pid = b.peerCred(fd).pid;
    } catch {
      pid = 0;
    }
    this.peerPid = pid;
    this.fds.peerPid = pid;
    this.#poll = b.pollFd(fd, true, false, (status, readable, writable) => this.#onPoll(status, readable, writable));
  }

  /**
   * Queues descriptors to ride on the next bytes written; this socket owns them from now on
   * (each is closed once sent, or when the socket closes).
   */
  sendFds(fds: readonly number[]): void {
    if (this.#fd < 0) {
      for (const fd of fds) closeQuietly(fd);
      return;
    }
    this.#toSend.push(...fds);
  }

  /** Descriptors queued and not yet sent. */
  get queuedFds(): number {
    return this.#toSend.length;
  }

  #updatePoll(): void {
    if (this.#fd < 0) return;
    loadFdBinding().pollUpdate(this.#poll, this.#reading, this.#pending !== undefined);
  }

  #onPoll(status: number, readable: boolean, writable: boolean): void {
    if (status < 0) return void this.destroy(errnoError(-status, "poll"));
    if (readable) this.#readSome();
    if (writable && this.#pending) this.#flush();
  }

  #readSome(): void {
    const b = loadFdBinding();
    while (this.#fd >= 0 && this.#reading) {
      const r = b.recvFds(this.#fd, this.#buffer);
      if (typeof r === "number") {
        if (r === -EAGAIN) return;
        return void this.destroy(errnoError(-r, "recvmsg"));
      }
      for (const fd of r.fds) this.fds.add(fd);
      if (r.n === 0) {
        this.push(null);
        return void this.destroy();
      }
      if (!this.push(Buffer.from(this.#buffer.subarray(0, r.n)))) {
        this.#reading = false;
        this.#updatePoll();
      }
    }
  }

  override _read(): void {
    if (this.#reading || this.#fd < 0) return;
    this.#reading = true;
    this.#updatePoll();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.#pending = { chunk, offset: 0, callback };
    this.#flush();
  }

  /** Writes as much of the pending chunk as the socket takes; one byte per queued descriptor first. */
  #flush(): void {
    const p = this.#pending;
    if (!p || this.#fd < 0) return;
    const b = loadFdBinding();
    while (p.offset < p.chunk.length) {
      const passFd = this.#toSend[0] ?? -1;
      const len = passFd >= 0 ? 1 : p.chunk.length - p.offset;
      const n = b.sendFd(this.#fd, p.chunk, p.offset, len, passFd);
      if (n === -EAGAIN) {
        this.#updatePoll();
        return;
      }
      if (n < 0) {
        this.#pending = undefined;
        p.callback(errnoError(-n, "sendmsg"));
        return;
      }
      if (passFd >= 0 && n > 0) closeQuietly(this.#toSend.shift() as number);
      p.offset += n;
    }
    this.#pending = undefined;
    this.#updatePoll();
    p.callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    if (this.#fd >= 0) {
      loadFdBinding().pollStop(this.#poll);
      closeQuietly(this.#fd);
      this.#fd = -1;
    }
    for (const fd of this.#toSend.splice(0)) closeQuietly(fd);
    this.fds.closeAll();
    const p = this.#pending;
    this.#pending = undefined;
    p?.callback(err ?? new Error("socket closed"));
    callback(err);
  }

  override _final(callback: (err?: Error | null) => void): void {
    callback();
    this.destroy();
  }
}

function errnoError(errno: number, syscall: string): Error {
  return Object.assign(new Error(`${syscall}: errno ${errno}`), { errno, syscall });
}

/** A listening unix socket whose connections are {@link FdSocket}s. */
export interface FdListener {
  readonly path: string;
  close(): void;
}

/** Listens on `path` (which must not exist) and hands every accepted connection to `onConnection`. */
export function listenFdUnix(path: string, onConnection: (socket: FdSocket) => void): FdListener {
  const b = loadFdBinding();
  const fd = b.unixListen(path);
  let closed = false;
  const poll = b.pollFd(fd, true, false, () => {
    for (;;) {
      const c = b.unixAccept(fd);
      if (c < 0) return;
      onConnection(new FdSocket(c));
    }
  });
  return {
    path,
    close() {
      if (closed) return;
      closed = true;
      b.pollStop(poll);
      closeQuietly(fd);
    },
  };
}

/** Connects to the unix socket at `path` (throws with `code` ECONNREFUSED, ENOENT…). */
export function connectFdUnix(path: string): FdSocket {
  return new FdSocket(loadFdBinding().unixConnect(path));
}
