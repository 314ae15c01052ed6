# SPDX-License-Identifier: Apache-2.0
# Sourced by scripts/peers.sh: upstream NSM's own commands, SPIRE and grpcurl, the peers of
# test/interop/. Versions are pinned; a peer the module proxy does not serve is recorded as failed
# with the command and its error, and the tests that need it skip with that reason.

NSM_UPSTREAM_VERSION=v1.18.0
# SPIRE 1.12.x (what upstream NSM deploys) is not served by the module proxy here; 1.13.3 is.
SPIRE_VERSION=v1.13.3
GRPCURL_VERSION=v1.9.3

# peer_via_module NAME MODULE VERSION PACKAGE [CGO]: builds PACKAGE from a throwaway module in the
# cache that requires it as a tool (`go get -tool`) and repeats MODULE's own replace lines. For
# modules `go install PACKAGE@VERSION` refuses: ones with replace directives, and ones whose
# versions the module proxy does not list (SPIRE here: an exact version is served, no list).
peer_via_module() {
  local name=$1 module=$2 version=$3 pkg=$4 cgo=${5:-0}
  built "$name" "$version" && return 0
  local dir="$NSM_PEERS_DIR/modules/$name@$version" log="$NSM_PEERS_DIR/logs/$name.log" start=$SECONDS
  say "building $name ($pkg@$version as a tool of a module in $dir)"
  mkdir -p "$dir" && rm -f "$dir/go.mod" "$dir/go.sum"
  local cmd="cd $dir && go mod init nsm-peers/$name && go get -tool $pkg@$version && CGO_ENABLED=$cgo go build -o $NSM_PEERS_BIN/$name $pkg"
  if (cd "$dir" && go mod init "nsm-peers/$name" && go get -tool "$pkg@$version" &&
    add_replaces "$module" && CGO_ENABLED=$cgo go build -o "$NSM_PEERS_BIN/$name" "$pkg") >"$log" 2>&1; then
    mark "$name" "$version"
    say "built $name in $((SECONDS - start)) s"
  else
    fail "$name" "$(printf '%s\n' "$cmd"; tail -n 20 "$log")"
  fi
}

# add_replaces MODULE: appends MODULE's replace directives (from its go.mod in the module cache) to
# the go.mod of the current directory, then lets go resolve what they name.
add_replaces() {
  local gomod
  gomod=$(go list -m -f '{{.GoMod}}' "$1") || return 1
  if grep -q '^replace' "$gomod"; then
    sed -n '/^replace (/,/^)/p; /^replace [^(]/p' "$gomod" >>go.mod && go mod tidy
  fi
}

# nsm_peer NAME: one upstream NSM command at $NSM_UPSTREAM_VERSION, by go install first and
# through a module when go install refuses it.
nsm_peer() {
  local name=$1 module=github.com/networkservicemesh/$1
  built "$name" "$NSM_UPSTREAM_VERSION" && return 0
  peer "$name" "$module@$NSM_UPSTREAM_VERSION"
  [ -f "$NSM_PEERS_DIR/failed/$name" ] || return 0
  local first
  first=$(cat "$NSM_PEERS_DIR/failed/$name")
  peer_via_module "$name" "$module" "$NSM_UPSTREAM_VERSION" "$module"
  if [ -f "$NSM_PEERS_DIR/failed/$name" ]; then
    # both attempts in the record (each already said FAILED)
    printf '%s\n\nthen:\n%s\n' "$first" "$(cat "$NSM_PEERS_DIR/failed/$name")" >"$NSM_PEERS_DIR/failed/$name.both"
    mv -f "$NSM_PEERS_DIR/failed/$name.both" "$NSM_PEERS_DIR/failed/$name"
  fi
}

peer grpcurl "github.com/fullstorydev/grpcurl@$GRPCURL_VERSION" github.com/fullstorydev/grpcurl/cmd/grpcurl
for nsm_cmd in cmd-registry-memory cmd-nsmgr cmd-nsc cmd-nsc-init cmd-nse-icmp-responder; do
  nsm_peer "$nsm_cmd"
done
# spire-server keeps its data store in SQLite (cgo), so SPIRE is built with cgo.
peer_via_module spire-server github.com/spiffe/spire "$SPIRE_VERSION" github.com/spiffe/spire/cmd/spire-server 1
peer_via_module spire-agent github.com/spiffe/spire "$SPIRE_VERSION" github.com/spiffe/spire/cmd/spire-agent 1
