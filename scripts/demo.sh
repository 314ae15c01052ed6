#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main demo. Installs what it needs, then runs examples/kernel2kernel on the local runtime
# (nodes and pods as network namespaces) and prints the pings.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# examples/kernel2kernel on the local runtime, as its README runs it; `nsm down` even on failure.
export NSM_LOCAL_STATE_DIR="${NSM_LOCAL_STATE_DIR:-/run/nsm-local-demo}"
./bin/nsm.js down >/dev/null # leftovers of an interrupted run
trap 'rc=$?; echo "\$ nsm down"; ./bin/nsm.js down || rc=1; exit $rc' EXIT
for step in "up" "apply -f examples/kernel2kernel" "get pods" "get connections" \
  "exec alpine -n ns-kernel2kernel -- ping -c 4 172.16.1.100" \
  "exec deployments/nse-kernel -n ns-kernel2kernel -- ping -c 4 172.16.1.101" \
  "exec alpine -n ns-kernel2kernel -- ip addr show nsm-1"; do
  echo "\$ nsm $step"
  # shellcheck disable=SC2086 # the steps are word lists
  ./bin/nsm.js $step
done
