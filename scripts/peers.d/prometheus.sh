# SPDX-License-Identifier: Apache-2.0
# Prometheus (sourced by scripts/peers.sh): scrapes the roles' metrics in test/observe.
# Module v0.316.0 is Prometheus 3.16.0. `go install` refuses modules with replace directives;
# then it is built from a throwaway module that requires it, in the cache.
PROMETHEUS_VERSION=v0.316.0
if ! built prometheus "$PROMETHEUS_VERSION"; then
  say "building prometheus (github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_VERSION)"
  prom_log="$NSM_PEERS_DIR/logs/prometheus.log"
  prom_start=$SECONDS
  if GOBIN="$NSM_PEERS_BIN" go install "github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_VERSION" \
    >"$prom_log" 2>&1; then
    mark prometheus "$PROMETHEUS_VERSION"
    say "built prometheus in $((SECONDS - prom_start)) s"
  else
    prom_mod="$NSM_PEERS_DIR/src/prometheus-$PROMETHEUS_VERSION"
    mkdir -p "$prom_mod"
    if (cd "$prom_mod" &&
      { [ -f go.mod ] || go mod init nsm-peers/prometheus; } &&
      go get "github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_VERSION" &&
      go build -o "$NSM_PEERS_BIN/prometheus" github.com/prometheus/prometheus/cmd/prometheus) >>"$prom_log" 2>&1; then
      mark prometheus "$PROMETHEUS_VERSION"
      say "built prometheus in $((SECONDS - prom_start)) s"
    else
      fail prometheus "go install github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_VERSION: $(tail -n 15 "$prom_log")"
    fi
  fi
fi
