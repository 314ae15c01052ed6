// SPDX-License-Identifier: Apache-2.0
/**
 * X.509 sources: where a component gets its current SVID and trust bundle, and hears about
 * rotations.
 *
 * The TLS credentials and the token generator read {@link X509Source.current} for every new
 * handshake or token, so a rotation takes effect without restarting anything. Sources:
 * - `createX509Source({ socket })` (./workloadapi): from a SPIFFE Workload API (SPIRE agent or
 *   the embedded one), streaming rotations;
 * - {@link createCaX509Source}: issued in process by an embedded CA, rotated on a timer
 *   (tests, and processes that run the CA themselves);
 * - {@link staticX509Source}: a fixed snapshot (tests).
 */
import { invalidArgument, unavailable } from "../sdk/core/errors.js";
import type { Logger } from "../sdk/core/logger.js";
import { silentLogger } from "../sdk/core/logger.js";
import type { CertificateAuthority } from "./ca.js";
import { trustDomainOf } from "./spiffeid.js";
import type { X509Bundle, X509Svid } from "./x509.js";

/** What a source holds at one moment. */
export interface X509Snapshot {
  /** The default SVID (the first one the Workload API returned). */
  readonly svid: X509Svid;
  /** Every SVID the workload is entitled to (`svid` first). */
  readonly svids: readonly X509Svid[];
  /** The bundle of the SVID's own trust domain. */
  readonly bundle: X509Bundle;
  /** Bundles of federated trust domains, keyed by trust domain name. */
  readonly federatedBundles: ReadonlyMap<string, X509Bundle>;
  /** Increases with every update of this source. */
  readonly version: number;
}

/** A live view of this workload's X.509 identity. */
export interface X509Source {
  /** The latest snapshot. */
  current(): X509Snapshot;
  /** Calls `listener` after every update; returns the function that unsubscribes. */
  subscribe(listener: (snapshot: X509Snapshot) => void): () => void;
  /** Stops following updates (idempotent). `current()` keeps returning the last snapshot. */
  close(): void;
  [Symbol.dispose](): void;
}

/** The common part of every source: the latest snapshot and its listeners. */
export class SnapshotHolder {
  #snapshot: X509Snapshot | undefined;
  readonly #listeners = new Set<(s: X509Snapshot) => void>();
  #version = 0;

  constructor(private readonly log: Logger = silentLogger) {}

  get snapshot(): X509Snapshot | undefined {
    return this.#snapshot;
  }

  set(parts: Omit<X509Snapshot, "version">): X509Snapshot {
    const snapshot: X509Snapshot = { ...parts, version: ++this.#version };
    this.#snapshot = snapshot;
    for (const l of this.#listeners) {
      try {
        l(snapshot);
      } catch (err) {
        this.log.error({ err: String(err) }, "an X.509 source listener failed");
      }
    }
    return snapshot;
  }

  current(): X509Snapshot {
    if (!this.#snapshot) throw invalidArgument("the X.509 source has no SVID yet");
    return this.#snapshot;
  }

  subscribe(listener: (s: X509Snapshot) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  clear(): void {
    this.#listeners.clear();
  }
}

/** A source that never changes. */
export function staticX509Source(svid: X509Svid, bundle: X509Bundle): X509Source {
  const holder = new SnapshotHolder();
  holder.set({ svid, svids: [svid], bundle, federatedBundles: new Map() });
  return {
    current: () => holder.current(),
    subscribe: (l) => holder.subscribe(l),
    close: () => holder.clear(),
    [Symbol.dispose]: () => holder.clear(),
  };
}

/** Default share of an SVID's lifetime after which it is replaced. */
export const DEFAULT_ROTATE_FRACTION = 0.5;

export interface SvidRotatorOptions {
  /** SVID lifetime. @default the CA's */
  readonly ttlMs?: number;
  /** Rotate after this share of the lifetime. @default 0.5 */
  readonly rotateFraction?: number;
  /** Delay before retrying a failed issuance. @default 1000 */
  readonly retryMs?: number;
  readonly log?: Logger;
}

/**
 * Keeps a fresh SVID for one identity: issues one, and a new one after `rotateFraction` of its
 * lifetime, telling `onSvid` each time. Used by the Workload API server (one per identity with
 * subscribers) and by {@link createCaX509Source}.
 */
export class SvidRotator {
  #svid: X509Svid | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #first: Promise<void> | undefined;
  readonly #listeners = new Set<(svid: X509Svid) => void>();
  readonly ttlMs: number;
  readonly rotateFraction: number;

  constructor(
    private readonly ca: CertificateAuthority,
    readonly spiffeId: string,
    private readonly options: SvidRotatorOptions = {},
  ) {
    this.ttlMs = options.ttlMs ?? ca.svidTtlMs;
    this.rotateFraction = options.rotateFraction ?? DEFAULT_ROTATE_FRACTION;
    if (!(this.rotateFraction > 0 && this.rotateFraction < 1)) {
      throw invalidArgument(`rotateFraction must be in (0, 1), got ${this.rotateFraction}`);
    }
  }

  /** The current SVID, issuing the first one if needed. */
  async svid(): Promise<X509Svid> {
    if (!this.#svid) {
      this.#first ??= this.#rotate().finally(() => {
        this.#first = undefined;
      });
      await this.#first;
    }
    if (!this.#svid) throw unavailable(`no SVID for ${this.spiffeId}: the rotator is closed`);
    return this.#svid;
  }

  onSvid(listener: (svid: X509Svid) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  get listenerCount(): number {
    return this.#listeners.size;
  }

  async #rotate(): Promise<void> {
    const svid = await this.ca.issue(this.spiffeId, { ttlMs: this.ttlMs });
    if (this.#closed) return;
    this.#svid = svid;
    this.options.log?.debug({ spiffeId: this.spiffeId, notAfter: svid.notAfter.toISOString() }, "SVID issued");
    this.#schedule(Math.max(1, (svid.notAfter.getTime() - Date.now()) * this.rotateFraction));
    for (const l of this.#listeners) l(svid);
  }

  #schedule(ms: number): void {
    clearTimeout(this.#timer);
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#rotate().catch((err: unknown) => {
        this.options.log?.error({ spiffeId: this.spiffeId, err: String(err) }, "SVID rotation failed; retrying");
        this.#schedule(this.options.retryMs ?? 1000);
      });
    }, ms);
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#listeners.clear();
  }
}

export interface CaX509SourceOptions extends SvidRotatorOptions {}

/**
 * A source whose SVID is issued in process by `ca` and rotated after `rotateFraction` of its
 * lifetime (default 1/2). Close it to stop the rotation timer.
 */
export async function createCaX509Source(
  ca: CertificateAuthority,
  spiffeId: string,
  options: Readonly<CaX509SourceOptions> = {},
): Promise<X509Source> {
  if (trustDomainOf(spiffeId) !== ca.trustDomain) {
    throw invalidArgument(`${spiffeId} is not in the CA's trust domain ${ca.trustDomain}`);
  }
  const holder = new SnapshotHolder(options.log);
  const rotator = new SvidRotator(ca, spiffeId, options);
  const publish = (svid: X509Svid) =>
    holder.set({ svid, svids: [svid], bundle: ca.bundle, federatedBundles: new Map() });
  rotator.onSvid(publish);
  try {
    await rotator.svid();
  } catch (err) {
    rotator.close();
    throw err;
  }
  const close = () => {
    rotator.close();
    holder.clear();
  };
  return {
    current: () => holder.current(),
    subscribe: (l) => holder.subscribe(l),
    close,
    [Symbol.dispose]: close,
  };
}
