// SPDX-License-Identifier: Apache-2.0
/**
 * Kubernetes record store: registry records as `networkservicemesh.io/v1` custom resources
 * (NetworkService, NetworkServiceEndpoint) in one namespace, as upstream's cmd-registry-k8s
 * keeps them (`NSM_REGISTRY_BACKEND=k8s`). The resource's name is the record's name and its
 * spec is the record (./codec.ts).
 *
 * - put: replace with the resourceVersion this store last wrote (or create); `409 Conflict`
 *   (someone else changed it) and `409 AlreadyExists` (created meanwhile) are retried from a
 *   fresh read, up to 5 times.
 * - remove: delete; a missing resource is not an error.
 * - list: a quorum list; its `resourceVersion` starts the watch.
 * - watch: the apiserver's watch from that resourceVersion with bookmarks; an `ERROR` event or
 *   an HTTP error with code 410 (`Gone`, the revision was compacted) is {@link StoreGone}, so
 *   the follower lists again; the watch ending (the apiserver's timeout) is resumed from the
 *   last resourceVersion.
 * - sweepExpired: deletes the NSE resources whose `expiration_time` has passed (those of a
 *   replica that died before its expiry timer ran), each with a resourceVersion precondition so
 *   a record refreshed meanwhile stays.
 * A resource whose spec is not a record is reported as skipped, naming it.
 * Uses @kubernetes/client-node (1.4.0: 2.x does not run on Node 20).
 */
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { ApiException, CustomObjectsApi, type KubeConfig, Watch } from "@kubernetes/client-node";
import {
  type NetworkService,
  type NetworkServiceEndpoint,
  NetworkServiceEndpointSchema,
  NetworkServiceSchema,
} from "../../api/gen/registry_pb.js";
import { type RecordStore, type StoreEvent, StoreGone, type StoreSnapshot } from "../../registry-store/index.js";
import { EventQueue } from "../../registry-store/queue.js";
import { recordToSpec, specToRecord } from "./codec.js";

export const NSM_GROUP = "networkservicemesh.io";
export const NSM_VERSION = "v1";
const MAX_CONFLICT_RETRIES = 5;

interface CustomResource {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; resourceVersion?: string };
  spec?: unknown;
}

interface Resource {
  readonly plural: string;
  readonly kind: string;
}

function statusCode(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  const c = (err as { code?: unknown; statusCode?: unknown } | null)?.statusCode ?? (err as { code?: unknown })?.code;
  return typeof c === "number" ? c : undefined;
}

export class K8sRecordStore<S extends DescMessage> implements RecordStore<MessageShape<S>> {
  readonly backend = "k8s";
  readonly #api: CustomObjectsApi;
  readonly #watch: Watch;
  readonly #versions = new Map<string, string>();

  constructor(
    kubeConfig: KubeConfig,
    readonly namespace: string,
    readonly schema: S,
    readonly resource: Resource,
  ) {
    this.#api = kubeConfig.makeApiClient(CustomObjectsApi);
    this.#watch = new Watch(kubeConfig);
  }

  #where() {
    return { group: NSM_GROUP, version: NSM_VERSION, namespace: this.namespace, plural: this.resource.plural };
  }

  #body(name: string, record: MessageShape<S>, resourceVersion?: string): CustomResource {
    return {
      apiVersion: `${NSM_GROUP}/${NSM_VERSION}`,
      kind: this.resource.kind,
      metadata: resourceVersion ? { name, resourceVersion } : { name },
      spec: recordToSpec(this.schema, record),
    };
  }

  async put(record: MessageShape<S>): Promise<void> {
    const name = (record as unknown as { name: string }).name;
    let version = this.#versions.get(name);
    for (let attempt = 0; ; attempt++) {
      try {
        const out = await this.#write(name, record, version);
        if (out.metadata?.resourceVersion) this.#versions.set(name, out.metadata.resourceVersion);
        return;
      } catch (err) {
        const code = statusCode(err);
        if ((code !== 409 && !(code === 404 && version)) || attempt >= MAX_CONFLICT_RETRIES) throw err;
        version = code === 404 ? undefined : await this.#currentVersion(name);
      }
    }
  }

  /** Replaces the object at `version`, or creates it when no version is known. */
  #write(name: string, record: MessageShape<S>, version: string | undefined): Promise<CustomResource> {
    if (!version) return this.#api.createNamespacedCustomObject({ ...this.#where(), body: this.#body(name, record) });
    return this.#api.replaceNamespacedCustomObject({ ...this.#where(), name, body: this.#body(name, record, version) });
  }

  async #currentVersion(name: string): Promise<string | undefined> {
    try {
      const cur: CustomResource = await this.#api.getNamespacedCustomObject({ ...this.#where(), name });
      return cur.metadata?.resourceVersion;
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw err;
    }
  }

  async remove(name: string, resourceVersion?: string): Promise<void> {
    this.#versions.delete(name);
    const body = resourceVersion ? { preconditions: { resourceVersion } } : undefined;
    try {
      await this.#api.deleteNamespacedCustomObject({ ...this.#where(), name, body });
    } catch (err) {
      const code = statusCode(err);
      if (code !== 404 && !(code === 409 && resourceVersion)) throw err;
    }
  }

  async #listRaw(): Promise<{ items: CustomResource[]; resourceVersion: string }> {
    const out = (await this.#api.listNamespacedCustomObject(this.#where())) as {
      items?: CustomResource[];
      metadata?: { resourceVersion?: string };
    };
    return { items: out.items ?? [], resourceVersion: out.metadata?.resourceVersion ?? "" };
  }

  async list(): Promise<StoreSnapshot<MessageShape<S>>> {
    const { items, resourceVersion } = await this.#listRaw();
    const records: MessageShape<S>[] = [];
    const skipped: { name: string; reason: string }[] = [];
    for (const item of items) {
      const d = this.#decode(item);
      if ("record" in d) records.push(d.record);
      else skipped.push(d.skipped);
    }
    return { records, skipped, revision: resourceVersion };
  }

  async get(name: string): Promise<StoreSnapshot<MessageShape<S>>> {
    let item: CustomResource;
    try {
      item = await this.#api.getNamespacedCustomObject({ ...this.#where(), name });
    } catch (err) {
      if (statusCode(err) === 404) return { records: [], skipped: [], revision: "" };
      throw err;
    }
    const d = this.#decode(item);
    const revision = item.metadata?.resourceVersion ?? "";
    return "record" in d
      ? { records: [d.record], skipped: [], revision }
      : { records: [], skipped: [d.skipped], revision };
  }

  #decode(item: CustomResource): { record: MessageShape<S> } | { skipped: { name: string; reason: string } } {
    const name = item.metadata?.name ?? "";
    try {
      return { record: specToRecord(this.schema, item.spec, name) };
    } catch (err) {
      const reason = `${this.resource.kind} ${this.namespace}/${name} holds no record: ${String(err)}`;
      return { skipped: { name, reason } };
    }
  }

  async *watch(revision: string, signal: AbortSignal): AsyncGenerator<StoreEvent<MessageShape<S>>> {
    const queue = new EventQueue<StoreEvent<MessageShape<S>>>();
    const path = `/apis/${NSM_GROUP}/${NSM_VERSION}/namespaces/${this.namespace}/${this.resource.plural}`;
    const onEvent = (phase: string, obj: CustomResource & { code?: number; message?: string }) => {
      const rv = obj.metadata?.resourceVersion ?? revision;
      if (phase === "ERROR") {
        const gone = obj.code === 410;
        queue.fail(gone ? new StoreGone(obj.message ?? "410 Gone") : new Error(`watch error: ${obj.message}`));
      } else if (phase === "BOOKMARK") {
        queue.push({ revision: rv, deleted: false });
      } else {
        const d = this.#decode(obj);
        queue.push(
          "record" in d
            ? { revision: rv, deleted: phase === "DELETED", record: d.record }
            : { revision: rv, deleted: false, skipped: d.skipped },
        );
      }
    };
    const onDone = (err: unknown) => {
      if (!err || signal.aborted) queue.end();
      else queue.fail(statusCode(err) === 410 ? new StoreGone(String(err)) : err);
    };
    const query = { resourceVersion: revision, allowWatchBookmarks: true };
    const controller = await this.#watch.watch(path, query, onEvent, onDone);
    try {
      yield* queue.drain(signal);
    } finally {
      controller.abort();
    }
  }

  /** Deletes expired NSE resources (see the module doc); returns how many it deleted. */
  async sweepExpired(nowMs = Date.now()): Promise<number> {
    const { items } = await this.#listRaw();
    let deleted = 0;
    for (const item of items) {
      const d = this.#decode(item);
      if (!("record" in d)) continue;
      const exp = (d.record as unknown as NetworkServiceEndpoint).expirationTime;
      if (!exp || timestampMs(exp) > nowMs) continue;
      await this.remove(item.metadata?.name ?? "", item.metadata?.resourceVersion);
      deleted++;
    }
    return deleted;
  }
}

export interface K8sStores {
  readonly nse: K8sRecordStore<typeof NetworkServiceEndpointSchema> & RecordStore<NetworkServiceEndpoint>;
  readonly ns: K8sRecordStore<typeof NetworkServiceSchema> & RecordStore<NetworkService>;
}

/** The NSE and NS stores in `namespace` of the cluster `kubeConfig` points at. */
export function k8sStores(kubeConfig: KubeConfig, namespace: string): K8sStores {
  return {
    nse: new K8sRecordStore(kubeConfig, namespace, NetworkServiceEndpointSchema, {
      plural: "networkserviceendpoints",
      kind: "NetworkServiceEndpoint",
    }),
    ns: new K8sRecordStore(kubeConfig, namespace, NetworkServiceSchema, {
      plural: "networkservices",
      kind: "NetworkService",
    }),
  };
}
