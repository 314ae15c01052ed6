// SPDX-License-Identifier: Apache-2.0
// Test helper: the NSM CRDs (deploy/k8s/crds) applied to a harness cluster and served.
import { join } from "node:path";
import type { KubeCluster } from "./harness.js";

export const CRD_DIR = join(import.meta.dirname, "../../deploy/k8s/crds");

/** Applies the CRDs, waits until they are Established and their resources answer. */
export async function applyCrds(cluster: KubeCluster): Promise<void> {
  const applied = await cluster.kubectl(["apply", "-f", CRD_DIR]);
  if (applied.code !== 0) throw new Error(`kubectl apply CRDs: ${applied.stderr}`);
  const crds = ["crd/networkserviceendpoints.networkservicemesh.io", "crd/networkservices.networkservicemesh.io"];
  const waited = await cluster.kubectl(["wait", "--for=condition=Established", "--timeout=60s", ...crds]);
  if (waited.code !== 0) throw new Error(`CRDs not Established: ${waited.stderr}`);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const got = await cluster.kubectl(["get", "networkserviceendpoints,networkservices", "-A"]);
    if (got.code === 0) return;
    if (Date.now() > deadline) throw new Error(`NSM resources not served: ${got.stderr}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}
