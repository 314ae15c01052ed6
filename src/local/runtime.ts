// SPDX-License-Identifier: Apache-2.0
/**
 * The local runtime's commands that change things, in one object: `up`, `apply`, `delete`,
 * `down` and `stop|start|restart`. Each holds the lock of the state directory; the state file is
 * saved after every step, so a command that fails half way leaves a state that `down` can clean.
 *
 * Where each part lives:
 * - ./lifecycle.ts: `up`/`down` (fabric, identity provider, registry, nodes)
 * - ./planner.ts: manifests + state → actions (pure); ./apply.ts performs them
 * - ./pod-supervisor.ts: pods as processes (init containers, readiness, stop)
 * - ./supervisor.ts: any process (start, readiness, stop, kill)
 * - ./control.ts: `stop|start|restart`
 * - ./errors.ts: {@link LocalError}, the one error type
 */
import type { Logger } from "../sdk/core/logger.js";
import { silentLogger } from "../sdk/core/logger.js";
import { apply, deleteObjects } from "./apply.js";
import { type LocalConfig, localConfig } from "./config.js";
import type { RuntimeContext } from "./context.js";
import { type ControlAction, type ControlOptions, control } from "./control.js";
import { changeMetadata, createNamespace, deleteSelected, type MetadataField, scale } from "./kubectl/actions.js";
import type { Query } from "./kubectl/query.js";
import { down, type UpOptions, up } from "./lifecycle.js";
import type { Progress } from "./progress.js";
import type { RuntimePaths } from "./state.js";

export type { ControlAction, ControlOptions } from "./control.js";
export type { UpOptions } from "./lifecycle.js";

export interface LocalRuntimeOptions {
  /** @default {@link localConfig}() */
  readonly config?: LocalConfig;
  /** Structured log of what the runtime does (processes started and stopped). @default silent */
  readonly log?: Logger;
}

export class LocalRuntime {
  readonly #ctx: RuntimeContext;

  constructor(
    readonly paths: RuntimePaths,
    readonly out: Progress,
    options: LocalRuntimeOptions = {},
  ) {
    this.#ctx = { paths, out, config: options.config ?? localConfig(), log: options.log ?? silentLogger };
  }

  up(nodeCount: number, options: UpOptions = {}): Promise<void> {
    return up(this.#ctx, nodeCount, options);
  }

  apply(files: readonly string[], namespace?: string): Promise<void> {
    return apply(this.#ctx, files, namespace);
  }

  delete(files: readonly string[], namespace?: string): Promise<void> {
    return deleteObjects(this.#ctx, files, namespace);
  }

  control(action: ControlAction, target: string, options: ControlOptions = {}): Promise<void> {
    return control(this.#ctx, action, target, options);
  }

  /** `delete KIND NAME…|-l SELECTOR` (see ./kubectl/actions.ts). */
  deleteSelected(query: Query): Promise<void> {
    return deleteSelected(this.#ctx, query);
  }

  /** `create namespace NAME`. */
  createNamespace(name: string): Promise<void> {
    return createNamespace(this.#ctx, name);
  }

  /** `scale deployment NAME --replicas N`. */
  scale(query: Query, replicas: number): Promise<void> {
    return scale(this.#ctx, query, replicas);
  }

  /** `label|annotate KIND NAME k=v… k-…`. */
  changeMetadata(query: Query, field: MetadataField, changes: readonly string[], overwrite: boolean): Promise<void> {
    return changeMetadata(this.#ctx, query, field, changes, overwrite);
  }

  down(): Promise<void> {
    return down(this.#ctx);
  }
}
