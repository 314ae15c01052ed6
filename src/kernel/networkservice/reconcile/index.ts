// SPDX-License-Identifier: Apache-2.0
/** Reconciliation after a forwarder restart (see `reconcile.ts`). */
export type {
  OrphanLink,
  OrphanProcess,
  ReconcileReport,
  Reconciler,
  ReconcilerOptions,
  ReconcileScan,
} from "./reconcile.js";
export { createReconciler } from "./reconcile.js";
