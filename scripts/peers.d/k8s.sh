# SPDX-License-Identifier: Apache-2.0
# Kubernetes test peers (sourced by scripts/peers.sh): kube-apiserver and kubectl built from the Go
# module proxy at a pinned Kubernetes release, and helm. etcd is Debian's etcd-server
# (scripts/setup.sh installs it).
#
# k8s.io/kubernetes cannot be `go install`ed: its go.mod points the staging modules (k8s.io/api,
# k8s.io/client-go, ...) at ./staging with replace directives. So a throwaway module in the cache
# requires k8s.io/kubernetes and replaces each staging module with its published v0.x twin.

K8S_VERSION=v1.36.3
HELM_VERSION=v3.22.0

peer helm "helm.sh/helm/v3@$HELM_VERSION" helm.sh/helm/v3/cmd/helm

# k8s_module DIR: writes DIR/go.mod requiring k8s.io/kubernetes@$K8S_VERSION, with one replace
# line per staging module it requires (k8s.io/X v0.0.0 => k8s.io/X v0.MINOR.PATCH).
k8s_module() {
  local dir=$1 staging=v0.${K8S_VERSION#v1.} gomod
  mkdir -p "$dir"
  gomod=$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/^\s*"GoMod": "\(.*\)",$/\1/p') || return 1
  [ -f "$gomod" ] || { echo "go mod download k8s.io/kubernetes@$K8S_VERSION gave no go.mod"; return 1; }
  {
    printf 'module nsm-peers/k8s\n\ngo 1.26.0\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$K8S_VERSION"
    grep -E '^\s+k8s\.io/[a-z0-9-]+ v0\.0\.0$' "$gomod" | awk -v v="$staging" '{ printf "\t%s => %s %s\n", $1, $1, v }'
    printf ')\n'
  } >"$dir/go.mod"
}

# k8s_peer NAME: go build k8s.io/kubernetes/cmd/NAME into $NSM_PEERS_BIN, stamped with the version.
k8s_peer() {
  local name=$1 dir="$NSM_PEERS_DIR/src/k8s-$K8S_VERSION" log="$NSM_PEERS_DIR/logs/$1.log" start=$SECONDS
  built "$name" "$K8S_VERSION" && { rm -f "$NSM_PEERS_DIR/failed/$name"; return 0; }
  say "building $name (k8s.io/kubernetes/cmd/$name@$K8S_VERSION)"
  local ver=k8s.io/component-base/version minor=${K8S_VERSION#v1.}
  local ldflags="-s -w -X $ver.gitVersion=$K8S_VERSION -X $ver.gitMajor=1 -X $ver.gitMinor=${minor%%.*}"
  if { [ -f "$dir/go.mod" ] || k8s_module "$dir"; } >"$log" 2>&1 &&
    (cd "$dir" && GOFLAGS="$GOFLAGS -mod=mod" go build -ldflags "$ldflags" -o "$NSM_PEERS_BIN/$name" "k8s.io/kubernetes/cmd/$name") >>"$log" 2>&1; then
    mark "$name" "$K8S_VERSION"
    say "built $name in $((SECONDS - start)) s"
  else
    fail "$name" "$(printf 'go build k8s.io/kubernetes/cmd/%s@%s in %s\n%s' "$name" "$K8S_VERSION" "$dir" "$(tail -n 20 "$log")")"
  fi
}

k8s_peer kube-apiserver
k8s_peer kubectl

# etcd is Debian's; linked into the peers' bin so tests find every peer in one place.
if command -v etcd >/dev/null 2>&1; then
  ln -sf "$(command -v etcd)" "$NSM_PEERS_BIN/etcd"
  rm -f "$NSM_PEERS_DIR/failed/etcd"
else
  echo "etcd is not installed (apt-get install etcd-server; scripts/setup.sh does)" >"$NSM_PEERS_DIR/failed/etcd"
fi
