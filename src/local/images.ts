// SPDX-License-Identifier: Apache-2.0
/**
 * Container images the local runtime cannot pull: a container that is not an NSM role runs its
 * `command` from the host's filesystem. These are the common test images of upstream's examples
 * and the Debian packages that give the host their commands (scripts/setup.sh installs them);
 * a command that is missing gets its package named in the error. Pure.
 */

/** Common test images (base name) and the Debian packages that provide what they are used for. */
export const IMAGE_PACKAGES: Readonly<Record<string, readonly string[]>> = {
  alpine: ["busybox", "iproute2", "iputils-ping", "wget", "curl", "bind9-dnsutils"],
  busybox: ["busybox"],
  nginx: ["nginx-light"],
  netshoot: [
    "iproute2",
    "iputils-ping",
    "curl",
    "bind9-dnsutils",
    "tcpdump",
    "iperf3",
    "netcat-openbsd",
    "socat",
    "traceroute",
    "ethtool",
    "iptables",
  ],
  "network-multitool": ["iproute2", "iputils-ping", "curl", "bind9-dnsutils", "tcpdump", "netcat-openbsd"],
  iperf3: ["iperf3"],
  "iperf3-alpine": ["iperf3"],
  postgres: ["postgresql-client"],
};

/** Commands upstream's READMEs run in those images, and the Debian package of each. */
export const COMMAND_PACKAGES: Readonly<Record<string, string>> = {
  busybox: "busybox",
  ping: "iputils-ping",
  ip: "iproute2",
  ss: "iproute2",
  curl: "curl",
  wget: "wget",
  nslookup: "bind9-dnsutils",
  dig: "bind9-dnsutils",
  iperf3: "iperf3",
  tcpdump: "tcpdump",
  nc: "netcat-openbsd",
  socat: "socat",
  traceroute: "traceroute",
  ethtool: "ethtool",
  iptables: "iptables",
  nft: "nftables",
  nginx: "nginx-light",
  psql: "postgresql-client",
};

/** A hint for a command missing on the host: which Debian package has it, if we know. */
export function missingCommandHint(command: string): string {
  const name = command.split("/").pop() ?? command;
  const pkg = COMMAND_PACKAGES[name];
  return pkg ? `; Debian package ${pkg} has it (bash scripts/setup.sh installs it)` : "";
}
