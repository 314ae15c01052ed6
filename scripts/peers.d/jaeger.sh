# SPDX-License-Identifier: Apache-2.0
# Jaeger v2 (sourced by scripts/peers.sh): the OTLP collector and trace store test/observe/trace*
# sends spans to and reads back through its HTTP query API. Module v1.75.0 ships the v2 binary as
# the `cmd/jaeger` program. Its go.mod carries replace directives, which `go install` refuses, so
# it is built from a throwaway module in the cache that requires it as a tool. The build is large
# (an OpenTelemetry Collector distribution): it runs at low priority and its progress (each
# package compiled) goes to the log, whose last line is echoed every 30 s.
JAEGER_VERSION=v1.75.0
jaeger_progress() {
  while sleep 30; do
    say "jaeger: still building ($(wc -l <"$1") log lines; last: $(tail -n 1 "$1" | cut -c1-100))"
  done
}
if ! built jaeger "$JAEGER_VERSION"; then
  say "building jaeger (github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION; several minutes)"
  jaeger_log="$NSM_PEERS_DIR/logs/jaeger.log"
  jaeger_mod="$NSM_PEERS_DIR/src/jaeger-$JAEGER_VERSION"
  jaeger_start=$SECONDS
  mkdir -p "$jaeger_mod"
  : >"$jaeger_log"
  jaeger_progress "$jaeger_log" &
  jaeger_ticker=$!
  if (cd "$jaeger_mod" &&
    { [ -f go.mod ] || go mod init nsm-peers/jaeger; } &&
    go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION" &&
    nice -n 10 go build -v -o "$NSM_PEERS_BIN/jaeger" github.com/jaegertracing/jaeger/cmd/jaeger) >>"$jaeger_log" 2>&1; then
    mark jaeger "$JAEGER_VERSION"
    say "built jaeger in $((SECONDS - jaeger_start)) s"
  else
    fail jaeger "go get -tool github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION && go build: $(tail -n 15 "$jaeger_log")"
  fi
  kill "$jaeger_ticker" 2>/dev/null
  wait "$jaeger_ticker" 2>/dev/null
fi
