#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every benchmark in smoke mode (--smoke: few connections or runs, seconds each), so that a change
# that breaks a benchmark fails the suite. A bench fails the run when it exits non-zero or when its
# last stdout line is not a JSON object with the keys it promises. Root (netns, veth, processes).
# Usage: bash scripts/bench-smoke.sh [name…]   (no name: all; scripts/test.sh runs them all after
# the tests)
set -uo pipefail
cd "$(dirname "$0")/.."
# The in-process netlink floors get the libuv pool the roles get (NSM_PROCESS_ENV, src/local/pods.ts).
export UV_THREADPOOL_SIZE="${UV_THREADPOOL_SIZE:-16}"

# name | arguments | keys the last line must have
benches=(
  "control-plane|bench/control-plane.ts --smoke|p50_ms floor_p50_ms ratio_p50"
  "setup|bench/setup.ts --smoke|p50_ms secure_p50_ms floor_p50_ms cni_ptp_p50_ms ratio_vs_floor ratio_vs_cni security_overhead_ratio metrics_overhead_ratio tracing_overhead_ratio nsmgr_rss_mib forwarder_rss_mib"
  "setup --remote|bench/setup.ts --remote --smoke|p50_ms remote_p50_ms ratio_remote_vs_local"
  "throughput|bench/throughput.ts --smoke|veth_ratio veth_gbps veth_raw_gbps vxlan_ratio wireguard_ratio"
  "services|bench/services.ts --smoke|composition_setup_ratio firewall_throughput_ratio bridge_throughput_ratio vl3_setup_ratio"
  "heal|bench/heal.ts --smoke|nse_death_p50_ms nse_death_floor_ms nse_death_ratio_vs_floor nsmgr_restart_p50_ms nsmgr_restart_floor_ms nsmgr_restart_ratio_vs_floor"
  "startup|bench/startup.ts --smoke|registry_accept_p50_ms nsmgr_accept_p50_ms forwarder_accept_p50_ms nse_accept_p50_ms nsc_established_p50_ms floor_accept_p50_ms nsmgr_ratio_vs_floor forwarder_ratio_vs_floor nsmgr_cpu_p50_ms forwarder_cpu_p50_ms floor_cpu_p50_ms"
  "registry|bench/registry.ts --smoke|memory_register_p50_ms etcd_register_p50_ms etcd_put_p50_ms etcd_register_ratio etcd_watch_p95_ms"
  "scale|bench/scale.ts --smoke|setup_p50_ms_5 setup_p50_ms_20 floor_p50_ms_20 setup_ratio_vs_floor_5 setup_ratio_vs_floor_20 hops_p50_ms_20 setup_ratio_vs_floors_20 close_p50_ms_20 nsmgr_rss_mib_20 forwarder_rss_mib_20 idle_cpu_pct_20 teardown_close_p50_ms"
  "dashboard|bench/dashboard.ts --smoke|event_to_page_p50_ms event_to_page_p95_ms burst_to_page_ms initial_load_ms"
)

# The roles run from dist/ when it is fresh and compile on the fly otherwise (slower, ~35 MB more
# per process): build it first so the figures are those of what ships.
if [ ! -f dist/cmd/main.js ] || [ -n "$(find src -newer dist/cmd/main.js -print -quit)" ]; then
  echo "== bench smoke: dist/ is stale, building it" >&2
  npm run build --silent >/dev/null
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
failed=()
for entry in "${benches[@]}"; do
  IFS='|' read -r name args keys <<<"$entry"
  if [ $# -gt 0 ] && ! printf '%s\n' "$@" | grep -qxF "$name"; then continue; fi
  echo "== bench smoke: $name" >&2
  start=$SECONDS
  # shellcheck disable=SC2086 # args is a word list
  if ! node --import tsx $args >"$out"; then
    echo "bench smoke: $name exited non-zero" >&2
    failed+=("$name")
    continue
  fi
  cat "$out"
  if ! tail -n 1 "$out" | node -e '
    const keys = process.argv.slice(1);
    let line = "";
    process.stdin.on("data", (d) => (line += d)).on("end", () => {
      let o;
      try { o = JSON.parse(line); } catch { console.error("last line is not JSON"); process.exit(1); }
      const bad = keys.filter((k) => typeof o?.[k] !== "number" || !Number.isFinite(o[k]));
      if (bad.length) { console.error(`missing or not a finite number: ${bad.join(", ")}`); process.exit(1); }
    });' $keys; then
    echo "bench smoke: $name: bad result line" >&2
    failed+=("$name")
    continue
  fi
  echo "== bench smoke: $name ok ($((SECONDS - start)) s)" >&2
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "bench smoke FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "bench smoke: all ok" >&2
