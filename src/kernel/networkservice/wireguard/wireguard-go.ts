// SPDX-License-Identifier: Apache-2.0
/**
 * WireGuard without the kernel module: one `wireguard-go` process per tunnel, configured over
 * its UAPI unix socket (the text protocol `wg` speaks, written here; the `wg` tool is not used).
 *
 * - `wireguard-go -f NAME` runs in the netns it is spawned in (the forwarder's, i.e. the node's,
 *   unless a `launcher` prefix such as `nsenter --net=PATH` puts it elsewhere). It creates the
 *   TUN `NAME` there and keeps its UDP socket there, also after the TUN is moved into a pod's
 *   netns: the data plane moves it.
 * - Its UAPI socket is `/var/run/wireguard/NAME.sock`. That directory is shared by every netns,
 *   so NAME must be unique on the machine, not only in the netns.
 * - Processes are stopped by PID (SIGTERM, then SIGKILL), never by name; the socket file is
 *   removed if the process left it behind.
 * - Each process carries, in its environment, the tag of the interface it serves
 *   (`NSM_WIREGUARD_TAG=nsm:<side>:<owner>:<connection id>`, see `../xconnect/tag.ts`). A wireguard-go
 *   outlives a forwarder killed with SIGKILL; `list()` finds it again (a `/proc` scan for
 *   `wireguard-go -f NAME` whose environment has a tag; its UAPI socket is
 *   `/var/run/wireguard/NAME.sock`), so that a restarted forwarder can re-adopt it (configure it
 *   over UAPI, stop it later by PID) or stop it as an orphan. The tag names the owner: several
 *   forwarders on one machine each see only their own. A PID is checked against the process's
 *   start time before every signal, so a reused PID is never signalled.
 *
 * Keys are X25519 (node:crypto); the raw 32 bytes are the last 32 of the DER encodings.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createPrivateKey, createPublicKey, generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import { readdir, readFile, rm, stat } from "node:fs/promises";
import { createConnection } from "node:net";
import { basename, join } from "node:path";
import { sleep } from "../../../sdk/core/context.js";
import { Code, invalidArgument, NsmError, unavailable } from "../../../sdk/core/errors.js";
import { type Logger, silentLogger } from "../../../sdk/core/logger.js";

/** Debian's wireguard-go. */
export const DEFAULT_WIREGUARD_GO = "/usr/bin/wireguard-go";

/** Where wireguard-go puts its UAPI sockets (fixed in wireguard-go). */
export const DEFAULT_WIREGUARD_RUN_DIR = "/var/run/wireguard";

/** The environment variable that carries the tag of the interface a wireguard-go serves. */
export const WIREGUARD_TAG_ENV = "NSM_WIREGUARD_TAG";

/** An X25519 key pair as raw 32-byte keys. */
export interface WireguardKeyPair {
  privateKey: Buffer;
  publicKey: Buffer;
}

const PKCS8_X25519_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");

/** A new X25519 key pair (raw 32-byte keys). */
export function generateWireguardKeyPair(): WireguardKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync("x25519");
  return {
    privateKey: privateKey.export({ type: "pkcs8", format: "der" }).subarray(-32),
    publicKey: publicKey.export({ type: "spki", format: "der" }).subarray(-32),
  };
}

/** The public key of a raw 32-byte X25519 private key. */
export function wireguardPublicKey(privateKey: Buffer): Buffer {
  if (privateKey.length !== 32) throw invalidArgument("a WireGuard private key has 32 bytes");
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, privateKey]), format: "der", type: "pkcs8" });
  return createPublicKey(key).export({ type: "spki", format: "der" }).subarray(-32);
}

/** What one tunnel is configured with. */
export interface WireguardTunnelConfig {
  privateKey: Buffer;
  /** Our UDP port (in the netns wireguard-go runs in). */
  listenPort: number;
  peerPublicKey: Buffer;
  /** The peer's address and port. */
  endpoint: { ip: string; port: number };
  /** Seconds; 0 disables. */
  persistentKeepaliveS: number;
}

/** A running wireguard-go. */
export interface WireguardDevice {
  /** The UAPI name, which is also the TUN's name until the data plane renames it. */
  readonly name: string;
  readonly pid: number;
  /** False once the process has exited. */
  readonly running: boolean;
}

/** A running wireguard-go found by {@link WireguardRunner.list}. */
export interface FoundWireguard {
  /** Usable with `configure`, `waitListening` and `stop` (by PID) of the runner that found it. */
  device: WireguardDevice;
  /** The tag it was started with (the tag of the interface it serves). */
  tag: string;
  /** Its UDP port, asked over UAPI (`get=1`); undefined when it did not answer or has none. */
  listenPort: number | undefined;
}

/** Starts, configures and stops wireguard-go processes. Replaceable (tests use a fake). */
export interface WireguardRunner {
  /**
   * Starts one for `name` and resolves once its UAPI socket answers. AlreadyExists if `name` is
   * in use. `tag` (the tag of the interface it will serve) is recorded with the process, for
   * `list()`.
   */
  start(name: string, tag?: string): Promise<WireguardDevice>;
  /**
   * Every running wireguard-go started with a tag, whoever started it (this runner, or the runner
   * of an earlier life of the forwarder). Without it, WireGuard tunnels of an earlier life are
   * neither re-adopted nor swept.
   */
  list?(): Promise<FoundWireguard[]>;
  /** Sets key, port, the one peer (endpoint, allowed IPs 0.0.0.0/0 and ::/0, keepalive) over UAPI. */
  configure(device: WireguardDevice, config: WireguardTunnelConfig): Promise<void>;
  /** Resolves once the process has a UDP socket on `port` (it binds when its interface is up). */
  waitListening(device: WireguardDevice, port: number, timeoutMs: number): Promise<void>;
  /** Stops it by PID and removes its socket; resolves when it has exited. Idempotent. */
  stop(device: WireguardDevice): Promise<void>;
  /** Stops every process this runner started (not those it only found). */
  dispose(): Promise<void>;
}

export interface WireguardGoOptions {
  /** @default "/usr/bin/wireguard-go" */
  binary?: string;
  /**
   * A command prefix that runs the rest in the tunnel netns (e.g. `["nsenter", "--net=/var/run/netns/node1"]`;
   * it must exec, not fork, so that the PID is wireguard-go's). @default none: the forwarder's own netns
   */
  launcher?: readonly string[];
  /** @default "/var/run/wireguard" */
  runDir?: string;
  /** How long to wait for the UAPI socket. @default 5000 */
  startTimeoutMs?: number;
  /** How long SIGTERM gets before SIGKILL. @default 2000 */
  stopTimeoutMs?: number;
  log?: Logger;
}

/** Processes inspected at once by `list()`. */
const LIST_BATCH = 64;

/** Output kept from each process for error messages. */
const OUTPUT_TAIL_BYTES = 2048;

/** The environment of wireguard-go: its log level and foreground mode; no inherited variables. */
const CHILD_ENV = {
  PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
  LOG_LEVEL: "error",
  // Skips the banner about the kernel module (the check is only a kernel version test).
  WG_PROCESS_FOREGROUND: "1",
  WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD: "1",
};

/** The state letter and start time (clock ticks since boot) of a process, or undefined when it is gone. */
function procStat(pid: number): { state: string; startTime: string } | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // "pid (comm) S ppid …": comm may hold spaces and parentheses; field 22 is the start time.
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const state = fields[0];
  const startTime = fields[19];
  return state && startTime ? { state, startTime } : undefined;
}

/**
 * A wireguard-go this runner did not spawn (found by `list()`): signalled by PID after checking
 * its start time, so that a PID reused by another process is left alone; its exit is polled.
 */
class FoundDevice implements WireguardDevice {
  readonly output = "";

  constructor(
    readonly name: string,
    readonly pid: number,
    readonly socket: string,
    readonly startTime: string,
  ) {}

  get running(): boolean {
    const st = procStat(this.pid);
    // A zombie has exited: only its parent's wait is missing.
    return st !== undefined && st.startTime === this.startTime && st.state !== "Z";
  }

  /** Sends `signal` if the process is still the one found. */
  signal(signal: NodeJS.Signals): void {
    if (!this.running) return;
    try {
      process.kill(this.pid, signal);
    } catch {
      // exited meanwhile
    }
  }

  /** True once it has exited, false when still running after `timeoutMs`. */
  async waitExit(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.running) {
      if (Date.now() > deadline) return false;
      await sleep(10);
    }
    return true;
  }
}

class Device implements WireguardDevice {
  output = "";
  exit: Promise<void>;
  #running = true;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    readonly socket: string,
  ) {
    const append = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString("utf8")).slice(-OUTPUT_TAIL_BYTES);
    };
    child.stdout?.on("data", append);
    child.stderr?.on("data", append);
    this.exit = new Promise((resolve) => {
      child.once("exit", () => {
        this.#running = false;
        resolve();
      });
      child.once("error", () => {
        this.#running = false;
        resolve();
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.#running;
  }
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

function formatEndpoint(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** One UAPI exchange: writes `request` (ending in an empty line), resolves with the reply up to its empty line. */
export function uapiExchange(socket: string, request: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const conn = createConnection(socket);
    let reply = "";
    const timer = setTimeout(() => {
      conn.destroy();
      reject(unavailable(`wireguard UAPI ${socket}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (err?: Error) => {
      clearTimeout(timer);
      conn.destroy();
      if (err) reject(err);
      else resolve(reply);
    };
    conn.on("error", (err) => done(unavailable(`wireguard UAPI ${socket}: ${err.message}`, { cause: err })));
    conn.on("data", (chunk) => {
      reply += chunk.toString("utf8");
      if (reply.endsWith("\n\n")) done();
    });
    conn.on("end", () => done());
    conn.write(request);
  });
}

/** The UAPI `set` lines for one tunnel. */
export function uapiSetRequest(config: WireguardTunnelConfig): string {
  const lines = [
    "set=1",
    `private_key=${config.privateKey.toString("hex")}`,
    `listen_port=${config.listenPort}`,
    "replace_peers=true",
    `public_key=${config.peerPublicKey.toString("hex")}`,
    `endpoint=${formatEndpoint(config.endpoint.ip, config.endpoint.port)}`,
    `persistent_keepalive_interval=${config.persistentKeepaliveS}`,
    "replace_allowed_ips=true",
    "allowed_ip=0.0.0.0/0",
    "allowed_ip=::/0",
  ];
  return `${lines.join("\n")}\n\n`;
}

/** True if `/proc/<pid>/net/udp{,6}` (the process's netns) has a socket bound to `port`. */
async function hasUdpSocket(pid: number, port: number): Promise<boolean> {
  const needle = `:${port.toString(16).toUpperCase().padStart(4, "0")} `;
  for (const file of ["udp", "udp6"]) {
    let text: string;
    try {
      text = await readFile(`/proc/${pid}/net/${file}`, "utf8");
    } catch {
      continue;
    }
    // Columns: sl local_address rem_address …; match the local address's port only.
    for (const line of text.split("\n").slice(1)) {
      const local = line.trim().split(/\s+/)[1];
      if (local && `${local} `.endsWith(needle)) return true;
    }
  }
  return false;
}

class WireguardGo implements WireguardRunner {
  readonly #binary: string;
  readonly #launcher: readonly string[];
  readonly #runDir: string;
  readonly #startTimeoutMs: number;
  readonly #stopTimeoutMs: number;
  readonly #log: Logger;
  readonly #live = new Set<Device>();

  constructor(o: Readonly<WireguardGoOptions>) {
    this.#binary = o.binary ?? DEFAULT_WIREGUARD_GO;
    this.#launcher = [...(o.launcher ?? [])];
    this.#runDir = o.runDir ?? DEFAULT_WIREGUARD_RUN_DIR;
    this.#startTimeoutMs = o.startTimeoutMs ?? 5000;
    this.#stopTimeoutMs = o.stopTimeoutMs ?? 2000;
    this.#log = o.log ?? silentLogger;
  }

  #device(d: WireguardDevice): Device | FoundDevice {
    if (!(d instanceof Device) && !(d instanceof FoundDevice)) {
      throw invalidArgument("not a wireguard-go device of this runner");
    }
    return d;
  }

  async start(name: string, tag?: string): Promise<WireguardDevice> {
    const socket = join(this.#runDir, `${name}.sock`);
    if (await exists(socket)) {
      throw new NsmError(`wireguard interface name ${name} is in use on this machine (${socket})`, Code.AlreadyExists);
    }
    const argv = [...this.#launcher, this.#binary, "-f", name];
    const env = tag === undefined ? CHILD_ENV : { ...CHILD_ENV, [WIREGUARD_TAG_ENV]: tag };
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], env });
    const device = new Device(name, child, socket);
    this.#live.add(device);
    void device.exit.then(() => this.#live.delete(device));
    let spawnError: Error | undefined;
    child.once("error", (err) => {
      spawnError = err;
    });
    const deadline = Date.now() + this.#startTimeoutMs;
    while (!(await exists(socket))) {
      if (!device.running || Date.now() > deadline) {
        await this.stop(device);
        throw this.#startFailure(device, child, spawnError);
      }
      await sleep(2);
    }
    this.#log.debug({ name, pid: device.pid }, "wireguard-go started");
    return device;
  }

  /** Why a wireguard-go did not come up: spawn error, no UAPI socket in time, or an early exit. */
  #startFailure(device: Device, child: ChildProcess, spawnError: Error | undefined): NsmError {
    const why = spawnError
      ? spawnError.message
      : device.running
        ? `no UAPI socket after ${this.#startTimeoutMs} ms`
        : `exited (code ${child.exitCode}, signal ${child.signalCode})`;
    return unavailable(`wireguard-go ${device.name}: ${why}${device.output ? `: ${device.output.trim()}` : ""}`, {
      cause: spawnError,
      reason: "wireguard-go",
    });
  }

  async configure(d: WireguardDevice, config: WireguardTunnelConfig): Promise<void> {
    const device = this.#device(d);
    const reply = await uapiExchange(device.socket, uapiSetRequest(config));
    const errno = /^errno=(-?\d+)$/m.exec(reply)?.[1];
    if (errno !== "0") {
      throw new NsmError(
        `wireguard-go ${device.name}: UAPI set failed (errno ${errno ?? "?"})${device.output ? `: ${device.output.trim()}` : ""}`,
        Code.Internal,
        { reason: "wireguard-uapi" },
      );
    }
  }

  async waitListening(d: WireguardDevice, port: number, timeoutMs: number): Promise<void> {
    const device = this.#device(d);
    const deadline = Date.now() + timeoutMs;
    while (!(await hasUdpSocket(device.pid, port))) {
      if (!device.running || Date.now() > deadline) {
        throw unavailable(
          `wireguard-go ${device.name}: not listening on UDP port ${port}` +
            `${device.running ? ` after ${timeoutMs} ms` : " (exited)"}${device.output ? `: ${device.output.trim()}` : ""}`,
          { reason: "wireguard-go" },
        );
      }
      await sleep(5);
    }
  }

  async list(): Promise<FoundWireguard[]> {
    const program = basename(this.#binary);
    const pids = (await readdir("/proc").catch((): string[] => [])).filter((n) => /^\d+$/.test(n)).map(Number);
    const found: FoundWireguard[] = [];
    // A bounded number of /proc files open at once, however many processes there are.
    for (let i = 0; i < pids.length; i += LIST_BATCH) {
      const batch = await Promise.all(pids.slice(i, i + LIST_BATCH).map((pid) => this.#inspect(pid, program)));
      for (const f of batch) if (f) found.push(f);
    }
    return found.sort((a, b) => a.device.pid - b.device.pid);
  }

  /** The process `pid` as a FoundWireguard if it is `<program> -f NAME` with a tag in its environment. */
  async #inspect(pid: number, program: string): Promise<FoundWireguard | undefined> {
    const read = (file: string) => readFile(`/proc/${pid}/${file}`, "utf8").catch(() => "");
    const argv = (await read("cmdline")).split("\0");
    if (argv.at(-1) === "") argv.pop();
    const name = argv[2];
    if (argv.length !== 3 || basename(argv[0]!) !== program || argv[1] !== "-f" || !name) return undefined;
    const prefix = `${WIREGUARD_TAG_ENV}=`;
    const tag = (await read("environ"))
      .split("\0")
      .find((e) => e.startsWith(prefix))
      ?.slice(prefix.length);
    const st = procStat(pid);
    if (!tag || !st || st.state === "Z") return undefined;
    const device =
      [...this.#live].find((d) => d.pid === pid) ?? new FoundDevice(name, pid, this.#socket(name), st.startTime);
    return { device, tag, listenPort: await this.#listenPort(this.#socket(name)) };
  }

  #socket(name: string): string {
    return join(this.#runDir, `${name}.sock`);
  }

  async #listenPort(socket: string): Promise<number | undefined> {
    try {
      const port = /^listen_port=(\d+)$/m.exec(await uapiExchange(socket, "get=1\n\n", 1000))?.[1];
      return port === undefined ? undefined : Number(port);
    } catch {
      return undefined;
    }
  }

  async stop(d: WireguardDevice): Promise<void> {
    const device = this.#device(d);
    if (device instanceof FoundDevice) {
      await this.#stopFound(device);
      return;
    }
    if (device.running && device.child.pid !== undefined) {
      device.child.kill("SIGTERM");
      const cancel = new AbortController();
      const timer = sleep(this.#stopTimeoutMs, cancel.signal).then(
        () => true,
        () => false,
      );
      const timedOut = await Promise.race([device.exit.then(() => false), timer]);
      cancel.abort();
      if (timedOut) {
        this.#log.warn({ name: device.name, pid: device.pid }, "wireguard-go ignored SIGTERM: SIGKILL");
        device.child.kill("SIGKILL");
        await device.exit;
      }
    }
    await device.exit;
    this.#live.delete(device);
    await rm(device.socket, { force: true });
  }

  async #stopFound(device: FoundDevice): Promise<void> {
    device.signal("SIGTERM");
    if (!(await device.waitExit(this.#stopTimeoutMs))) {
      this.#log.warn({ name: device.name, pid: device.pid }, "wireguard-go ignored SIGTERM: SIGKILL");
      device.signal("SIGKILL");
      if (!(await device.waitExit(this.#stopTimeoutMs))) {
        throw unavailable(`wireguard-go ${device.name} (pid ${device.pid}) survived SIGKILL`, {
          reason: "wireguard-go",
        });
      }
    }
    await rm(device.socket, { force: true });
  }

  async dispose(): Promise<void> {
    await Promise.all([...this.#live].map((d) => this.stop(d)));
  }
}

/** A {@link WireguardRunner} that spawns Debian's `wireguard-go`. */
export function createWireguardGoRunner(options: Readonly<WireguardGoOptions> = {}): WireguardRunner {
  return new WireguardGo(options);
}
