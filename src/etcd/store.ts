// SPDX-License-Identifier: Apache-2.0
/**
 * etcd record store: NSM registry records in etcd v3, for users who run NSM without Kubernetes
 * across several machines (`NSM_REGISTRY_BACKEND=etcd`).
 *
 * Layout: `<prefix>/nse/<name>` and `<prefix>/ns/<name>`, the value is the record's protobuf
 * JSON. An NSE is written with a lease that ends (whole seconds, rounded up) at its
 * `expiration_time`, so etcd deletes it by itself if no registry replica is left to do it;
 * records that expire in the same second share one lease (one grant per second, not per
 * Register). The list is a linearizable range read; the watch starts at the list's revision + 1
 * and reports deletions with the previous value. A watch etcd cancels (its revision was
 * compacted, the member went away) surfaces as {@link StoreGone}, which makes the follower list
 * again. Uses the `etcd3` client (maintained, grpc-js based).
 */
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { fromJsonString, toJsonString } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Etcd3, type IKeyValue, type Watcher } from "etcd3";
import {
  type NetworkService,
  type NetworkServiceEndpoint,
  NetworkServiceEndpointSchema,
  NetworkServiceSchema,
} from "../api/gen/registry_pb.js";
import { type RecordStore, type StoreEvent, StoreGone, type StoreSnapshot } from "../registry-store/index.js";
import { EventQueue } from "../registry-store/queue.js";

/** Where the records live by default. */
export const DEFAULT_ETCD_PREFIX = "/nsm/registry";

export interface EtcdStoreOptions {
  /** `http://host:port` endpoints of the etcd cluster. */
  readonly endpoints: readonly string[];
  /** Key prefix of the records. @default "/nsm/registry" */
  readonly prefix?: string;
  /** Per-call timeout. @default 5000 */
  readonly callTimeoutMs?: number;
}

/** A connection to etcd and the two stores on it; `close()` ends the connection. */
export interface EtcdStores {
  readonly nse: RecordStore<NetworkServiceEndpoint>;
  readonly ns: RecordStore<NetworkService>;
  close(): void;
}

class LeasePool {
  readonly #bySecond = new Map<number, Promise<string>>();

  constructor(readonly client: Etcd3) {}

  /** A lease that ends at `expiresAtMs` (rounded up to a whole second). */
  leaseUntil(expiresAtMs: number): Promise<string> {
    const now = Date.now();
    const second = Math.ceil(expiresAtMs / 1000);
    for (const [s] of this.#bySecond) if (s * 1000 <= now) this.#bySecond.delete(s);
    let lease = this.#bySecond.get(second);
    if (!lease) {
      const ttl = Math.max(1, second - Math.floor(now / 1000));
      lease = this.client.leaseClient.leaseGrant({ TTL: ttl }).then((r) => String(r.ID));
      lease.catch(() => this.#bySecond.delete(second));
      this.#bySecond.set(second, lease);
    }
    return lease;
  }
}

class EtcdRecordStore<S extends DescMessage & { typeName: string }> implements RecordStore<MessageShape<S>> {
  readonly backend = "etcd";
  readonly #dir: string;

  constructor(
    readonly client: Etcd3,
    readonly watchers: Set<Watcher>,
    readonly leases: LeasePool,
    readonly schema: S,
    prefix: string,
    kindDir: string,
  ) {
    this.#dir = `${prefix.replace(/\/+$/, "")}/${kindDir}/`;
  }

  async put(record: MessageShape<S>): Promise<void> {
    const rec = record as unknown as NetworkServiceEndpoint;
    const put = this.client.put(this.#dir + rec.name).value(toJsonString(this.schema, record));
    if (rec.expirationTime) put.lease(await this.leases.leaseUntil(timestampMs(rec.expirationTime)));
    await put.exec();
  }

  async remove(name: string): Promise<void> {
    await this.client
      .delete()
      .key(this.#dir + name)
      .exec();
  }

  async list(): Promise<StoreSnapshot<MessageShape<S>>> {
    const res = await this.client.getAll().prefix(this.#dir).exec();
    const records: MessageShape<S>[] = [];
    const skipped: { name: string; reason: string }[] = [];
    for (const kv of res.kvs) {
      const decoded = this.#decode(kv);
      if ("record" in decoded) records.push(decoded.record);
      else skipped.push(decoded.skipped);
    }
    return { records, skipped, revision: res.header.revision };
  }

  async get(name: string): Promise<StoreSnapshot<MessageShape<S>>> {
    const res = await this.client.kv.range({ key: Buffer.from(this.#dir + name) });
    const decoded = res.kvs.map((kv) => this.#decode(kv));
    return {
      records: decoded.flatMap((d) => ("record" in d ? [d.record] : [])),
      skipped: decoded.flatMap((d) => ("skipped" in d ? [d.skipped] : [])),
      revision: res.header.revision,
    };
  }

  async *watch(revision: string, signal: AbortSignal): AsyncGenerator<StoreEvent<MessageShape<S>>> {
    const queue = new EventQueue<StoreEvent<MessageShape<S>>>();
    const start = String(BigInt(revision) + 1n);
    let watcher: Watcher;
    try {
      watcher = await this.client.watch().prefix(this.#dir).withPreviousKV().startRevision(start).create();
    } catch (err) {
      throw new StoreGone(`etcd watch from ${start}: ${String(err)}`);
    }
    this.watchers.add(watcher);
    watcher.on("put", (kv) => queue.push(this.#event(kv, false)));
    watcher.on("delete", (kv, prev) => queue.push(this.#event(prev ?? kv, true, kv.mod_revision)));
    watcher.on("error", (err) => queue.fail(new StoreGone(`etcd watch: ${String(err)}`)));
    watcher.on("end", () => queue.end());
    try {
      yield* queue.drain(signal);
    } finally {
      this.watchers.delete(watcher);
      await stopWatcher(watcher);
    }
  }

  #event(kv: IKeyValue, deleted: boolean, revision = kv.mod_revision): StoreEvent<MessageShape<S>> {
    if (deleted && kv.value.length === 0) {
      // No previous value (it was compacted): the deletion still names the record.
      const name = kv.key.toString().slice(this.#dir.length);
      return { revision, deleted, record: this.#named(name) };
    }
    const decoded = this.#decode(kv);
    if ("record" in decoded) return { revision, deleted, record: decoded.record };
    return { revision, deleted, skipped: decoded.skipped };
  }

  #named(name: string): MessageShape<S> {
    return fromJsonString(this.schema, JSON.stringify({ name }));
  }

  #decode(kv: IKeyValue): { record: MessageShape<S> } | { skipped: { name: string; reason: string } } {
    const name = kv.key.toString().slice(this.#dir.length);
    try {
      const record = fromJsonString(this.schema, kv.value.toString(), { ignoreUnknownFields: true });
      const rec = record as unknown as { name: string };
      if (rec.name !== name) return { skipped: { name, reason: `record name ${JSON.stringify(rec.name)} ≠ key` } };
      return { record };
    } catch (err) {
      return { skipped: { name, reason: `not a ${this.schema.typeName}: ${String(err)}` } };
    }
  }
}

async function stopWatcher(watcher: Watcher): Promise<void> {
  watcher.removeAllListeners();
  watcher.on("error", () => {});
  await watcher.cancel().catch(() => {});
}

/** Connects to etcd (lazily: the first call dials) and returns the NSE and NS stores. */
export function etcdStores(options: Readonly<EtcdStoreOptions>): EtcdStores {
  const prefix = options.prefix ?? DEFAULT_ETCD_PREFIX;
  const client = new Etcd3({
    hosts: [...options.endpoints],
    defaultCallOptions: (call) => (call.isStream ? {} : { deadline: Date.now() + (options.callTimeoutMs ?? 5000) }),
  });
  const leases = new LeasePool(client);
  // Watches still open at close() are cancelled first: the client would otherwise keep
  // re-dialling for them.
  const watchers = new Set<Watcher>();
  return {
    nse: new EtcdRecordStore(client, watchers, leases, NetworkServiceEndpointSchema, prefix, "nse"),
    ns: new EtcdRecordStore(client, watchers, leases, NetworkServiceSchema, prefix, "ns"),
    close: () => {
      const open = [...watchers];
      watchers.clear();
      void Promise.all(open.map(stopWatcher)).finally(() => client.close());
    },
  };
}
