#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the real peers the tests run against (upstream NSM cmds, SPIRE, kube-apiserver, kubectl,
# helm, grpcurl, ...) with the Go toolchain, pinned and cached outside the repository. The product
# itself never needs Go; only tests do.
#
# Each scripts/peers.d/*.sh defines its peers with `peer NAME MODULE@VERSION [PACKAGE]` or builds
# them itself into "$NSM_PEERS_BIN". A peer that fails to build is recorded in
# "$NSM_PEERS_DIR/failed/NAME" with the command and its error; tests read that file and skip with
# the reason printed. Safe to run again: a built peer is not built twice.
set -uo pipefail
cd "$(dirname "$0")/.."

export NSM_PEERS_DIR="${NSM_PEERS_DIR:-/var/cache/nsm-peers}"
export NSM_PEERS_BIN="$NSM_PEERS_DIR/bin"
mkdir -p "$NSM_PEERS_BIN" "$NSM_PEERS_DIR/failed" "$NSM_PEERS_DIR/stamps" "$NSM_PEERS_DIR/logs"

say() { printf '\033[1m[peers]\033[0m %s\n' "$*" >&2; }

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH="$PATH:/usr/local/go/bin"
fi
if ! command -v go >/dev/null 2>&1; then
  say "no Go toolchain: every peer is reported as not built"
  for f in scripts/peers.d/*.sh; do
    grep -oE '^peer [A-Za-z0-9_.-]+' "$f" | while read -r _ name; do
      echo "go is not installed (needed to build $name)" >"$NSM_PEERS_DIR/failed/$name"
    done
  done
  exit 0
fi
export GOFLAGS="${GOFLAGS:--trimpath}"
export CGO_ENABLED="${CGO_ENABLED:-0}"

# peer NAME MODULE@VERSION [PACKAGE]: go install PACKAGE@VERSION into $NSM_PEERS_BIN, once per
# pinned version (the stamp names it, so bumping the version rebuilds).
peer() {
  local name=$1 modver=$2 pkg=${3:-}
  local version=${modver##*@} module=${modver%@*}
  local target=${pkg:-$module}
  local stamp="$NSM_PEERS_DIR/stamps/$name@$version"
  if [ -f "$stamp" ] && [ -x "$NSM_PEERS_BIN/$name" ]; then
    rm -f "$NSM_PEERS_DIR/failed/$name"
    return 0
  fi
  say "building $name ($target@$version)"
  local log="$NSM_PEERS_DIR/logs/$name.log" start=$SECONDS
  if GOBIN="$NSM_PEERS_BIN" go install "$target@$version" >"$log" 2>&1; then
    local built
    built=$(basename "$target")
    [ "$built" = "$name" ] || mv -f "$NSM_PEERS_BIN/$built" "$NSM_PEERS_BIN/$name"
    touch "$stamp"
    rm -f "$NSM_PEERS_DIR/failed/$name"
    say "built $name in $((SECONDS - start)) s"
  else
    { echo "GOBIN=$NSM_PEERS_BIN go install $target@$version"; tail -n 20 "$log"; } >"$NSM_PEERS_DIR/failed/$name"
    say "FAILED to build $name (see $NSM_PEERS_DIR/failed/$name)"
  fi
}
# built NAME VERSION: true when a peer built by hand (not by `peer`) is cached at that version.
built() { [ -f "$NSM_PEERS_DIR/stamps/$1@$2" ] && [ -x "$NSM_PEERS_BIN/$1" ]; }
# mark NAME VERSION / fail NAME TEXT: record the outcome of a hand-built peer.
mark() { touch "$NSM_PEERS_DIR/stamps/$1@$2"; rm -f "$NSM_PEERS_DIR/failed/$1"; }
fail() { printf '%s\n' "$2" >"$NSM_PEERS_DIR/failed/$1"; say "FAILED to build $1 (see $NSM_PEERS_DIR/failed/$1)"; }

# The scripts are independent: each runs in its own subshell, all at once. A cold build is
# mostly compiling, but each `go build` also has long serial stretches (module downloads, the
# final link) that the others fill; on two cores this shortens a cold build by a good part.
shopt -s nullglob
pids=()
for f in scripts/peers.d/*.sh; do
  # shellcheck source=/dev/null
  (. "$f") &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || true; done
say "peers ready in $NSM_PEERS_BIN"
