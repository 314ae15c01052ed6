#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what the demo and the tests need, idempotently: Debian packages, npm packages, the
# netlink addon. Safe to run again; does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  echo "run as root: network namespaces, veth and VXLAN need CAP_NET_ADMIN" >&2
  exit 1
fi

# Debian packages: iproute2 (tests inspect the kernel with ip), nftables (the firewall endpoint's ACL), ping and iperf3 (data-plane
# checks), wireguard-go (userspace WireGuard), etcd (registry backend), CNI plugins (benchmark peer),
# openssl (the test apiserver's certificates), a C++ toolchain for the addon.
pkgs=(iproute2 iputils-ping iperf3 nftables openssl wireguard-go wireguard-tools etcd-server containernetworking-plugins g++ make python3)
# The commands of the test images upstream's examples use (alpine, busybox, nginx, nicolaka/netshoot, iperf3
# images, postgres): pods of the local runtime run their commands from the host (src/local/images.ts, README).
pkgs+=(busybox wget curl bind9-dnsutils nginx-light tcpdump netcat-openbsd socat traceroute ethtool iptables postgresql-client)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # A package with a service (nginx) must not start it on the host: pods run it in their netns.
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy=made
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ -z "$policy" ] || rm -f /usr/sbin/policy-rc.d
  if [[ " ${missing[*]} " == *" nginx-light "* ]] && [ -d /run/systemd/system ]; then
    systemctl disable --now nginx >/dev/null 2>&1 || true
  fi
fi

# Chromium: the dashboard's tests and benchmark drive it headless (playwright-core, no browser
# download). Large (~100 MB with its libraries), hence its own step; the tests skip without it.
if ! dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed"; then
  say "installing Debian's chromium (for test/dashboard and bench/dashboard.ts)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y --no-install-recommends -o Dpkg::Progress-Fancy=0 chromium | grep -E '^(Unpacking|Setting up) chromium' >&2 || true
  dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed" || { echo "chromium did not install" >&2; exit 1; }
fi

# npm packages (node-gyp builds the addon against the system's Node headers).
export npm_config_nodedir="${npm_config_nodedir:-/usr}"
stamp=node_modules/.nsm-install-stamp
if [ ! -f "$stamp" ] || [ package.json -nt "$stamp" ] || { [ -f package-lock.json ] && [ package-lock.json -nt "$stamp" ]; }; then
  say "installing npm packages"
  npm install --no-audit --no-fund --loglevel=error
  touch "$stamp"
fi

if [ -f native/binding.gyp ]; then
  addon=native/build/Release/nsnl.node
  newest=$(ls -t native/src/*.cc native/binding.gyp 2>/dev/null | head -1)
  if [ ! -f "$addon" ] || [ "$newest" -nt "$addon" ]; then
    say "building the netlink addon"
    node native/build.mjs >/dev/null
  fi
fi

# Compiled JavaScript for the long-running processes (less memory than compiling on the fly).
if [ ! -f dist/cmd/main.js ] || [ ! -f dist/dashboard/app.js ] || [ -n "$(find src web -newer dist/cmd/main.js -print -quit)" ]; then
  say "compiling TypeScript"
  npm run build --silent >/dev/null
fi
