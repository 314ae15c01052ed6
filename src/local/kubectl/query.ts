// SPDX-License-Identifier: Apache-2.0
/**
 * Which objects a kubectl-style command names: `KIND [NAME…]`, `KIND/NAME`, `-l SELECTOR`,
 * `--field-selector F==V`, `-n NS` or `-A`. Pure.
 */
import { LocalError } from "../errors.js";
import type { StoredKind } from "../kinds.js";
import type { State } from "../state.js";
import {
  type Alive,
  fieldOf,
  fieldSelectorsOf,
  isClusterScoped,
  type Kind,
  kindByWord,
  objectsOf,
  resourceNameOf,
  stateCrds,
} from "./objects.js";
import { parseFieldSelector, parseLabelSelector } from "./select.js";

type Json = Record<string, unknown>;

export interface Query {
  readonly kind: Kind;
  readonly names: readonly string[];
  /** undefined: every namespace (`-A`). */
  readonly namespace: string | undefined;
  readonly selector?: string;
  readonly fieldSelector?: string;
}

/** The kind a word names, or a one-line error listing the known ones. */
export function kindOf(word: string, crds: readonly StoredKind[] = []): Kind {
  const k = kindByWord(word, crds);
  if (!k)
    throw new LocalError(
      `the server doesn't have a resource type "${word}" (known here: pods, deployments, namespaces, nodes, configmaps, secrets, services and the other stored kinds)`,
    );
  return k;
}

/**
 * `KIND NAME…` or `KIND/NAME …` (every word a `KIND/NAME`) as a kind and names.
 */
export function parseTargets(
  words: readonly string[],
  crds: readonly StoredKind[] = [],
): { kind: Kind; names: string[] } {
  if (words.length === 0) throw new LocalError("you must specify the type of resource");
  if (words[0]!.includes("/")) {
    const pairs = words.map((w) => {
      const i = w.indexOf("/");
      if (i < 0)
        throw new LocalError(
          `there is no need to specify a resource type as a separate argument when passing arguments in resource/name form: ${w}`,
        );
      return { kind: kindOf(w.slice(0, i), crds), name: w.slice(i + 1) };
    });
    if (pairs.some((p) => p.kind !== pairs[0]!.kind)) throw new LocalError("give names of one kind at a time");
    return { kind: pairs[0]!.kind, names: pairs.map((p) => p.name) };
  }
  return { kind: kindOf(words[0]!, crds), names: words.slice(1) };
}

function metaOf(o: Json): Json {
  return (o.metadata ?? {}) as Json;
}

function byNamespaceAndName(a: Json, b: Json): number {
  const key = (o: Json) => `${String(metaOf(o).namespace ?? "")}/${String(metaOf(o).name)}`;
  return key(a).localeCompare(key(b));
}

/** The objects `q` selects (sorted by namespace and name, as the API server lists them); names that do not exist are an error (kubectl: NotFound). */
export function selectObjects(state: State, q: Query, alive: Alive): Json[] {
  const labels = parseLabelSelector(q.selector);
  const fields = parseFieldSelector(q.fieldSelector, fieldSelectorsOf(q.kind));
  const scoped = !isClusterScoped(q.kind, stateCrds(state)) && q.namespace !== undefined;
  const inScope = objectsOf(state, q.kind, alive).filter((o) => !scoped || metaOf(o).namespace === q.namespace);
  const picked = inScope.filter(
    (o) => labels((metaOf(o).labels ?? {}) as Record<string, string>) && fields((p) => fieldOf(o, p)),
  );
  if (q.names.length === 0) return picked.sort(byNamespaceAndName);
  return q.names.map((name) => {
    const o = picked.find((x) => metaOf(x).name === name);
    if (!o) throw notFound(q, name);
    return o;
  });
}

export function notFound(q: Query, name: string): LocalError {
  const group = resourceNameOf(q.kind).split(".").slice(1).join(".");
  const resource = group ? `${q.kind}.${group}` : q.kind;
  return new LocalError(
    `${resource} "${name}" not found${isClusterScoped(q.kind) || !q.namespace ? "" : ` in namespace "${q.namespace}"`}`,
  );
}

/** kubectl's message when a list comes out empty. */
export function noResources(q: Query): string {
  if (isClusterScoped(q.kind) || q.namespace === undefined) return "No resources found";
  return `No resources found in ${q.namespace} namespace.`;
}
