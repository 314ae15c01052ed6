// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, Env } from "./env.js";
import { ipamConfig } from "./ipam.js";
import { prefixServerUrlOf, vl3Config } from "./nse-vl3.js";
import { lbSettings } from "./vl3-lb.js";

const configError = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  throw new Error("no ConfigError");
};

describe("vL3 settings", () => {
  it("nse vl3: upstream defaults; host:port is a TCP URL", () => {
    const cfg = vl3Config(new Env({}));
    assert.equal(cfg.name, "vL3-server");
    assert.deepEqual(cfg.services, ["vL3"]);
    assert.equal(cfg.prefixServerUrl, "tcp://vl3-ipam:5006");
    assert.equal(cfg.unregisterItself, true);
    assert.equal(cfg.dnsTemplates.length, 1);
    assert.equal(prefixServerUrlOf("unix:///tmp/ipam.sock"), "unix:///tmp/ipam.sock");
  });

  it("nse vl3: a bad URL, template or label names its variable", () => {
    assert.match(
      configError(() => vl3Config(new Env({ NSM_PREFIX_SERVER_URL: "ftp://x:1" }))),
      /^NSM_PREFIX_SERVER_URL=/,
    );
    assert.match(
      configError(() => vl3Config(new Env({ NSM_DNS_TEMPLATES: "{{ .Id }}" }))),
      /^NSM_DNS_TEMPLATES=/,
    );
    assert.match(
      configError(() => vl3Config(new Env({ NSM_REQUEST_LABELS: "novalue" }))),
      /^NSM_REQUEST_LABELS=/,
    );
  });

  it("ipam: defaults and bad prefixes or lengths", () => {
    assert.deepEqual(ipamConfig(new Env({})), { prefix: "169.254.0.0/16", clientPrefixLength: 24 });
    assert.deepEqual(ipamConfig(new Env({ NSM_PREFIX: "172.16.0.5/16" })).prefix, "172.16.0.0/16");
    assert.match(
      configError(() => ipamConfig(new Env({ NSM_PREFIX: "nope" }))),
      /^NSM_PREFIX="nope"/,
    );
    assert.match(
      configError(() => ipamConfig(new Env({ NSM_CLIENT_PREFIX_LEN: "12" }))),
      /^NSM_CLIENT_PREFIX_LEN="12": prefix length 12 does not fit in 169\.254\.0\.0\/16/,
    );
    assert.match(
      configError(() => ipamConfig(new Env({ NSM_CLIENT_PREFIX_LEN: "x" }))),
      /^NSM_CLIENT_PREFIX_LEN="x"/,
    );
  });

  it("vl3-lb: port, protocol, selector", () => {
    const base = { NSM_NETWORK_SERVICES: "kernel://vl3-lb/nsm-1", NSM_PORT: "8080" };
    const s = lbSettings(new Env({ ...base, NSM_SELECTOR: "app:finance", NSM_PROTOCOL: "udp" }));
    assert.deepEqual(s, {
      name: "cmd-lb-vl3-vpp",
      service: "vl3-lb",
      selector: { app: "finance" },
      protocol: "udp",
      port: 8080,
      targetPort: 8080,
    });
    assert.match(
      configError(() => lbSettings(new Env({ ...base, NSM_PORT: "" }))),
      /^NSM_PORT="": is required/,
    );
    assert.match(
      configError(() => lbSettings(new Env({ ...base, NSM_PROTOCOL: "SCTP" }))),
      /^NSM_PROTOCOL="SCTP"/,
    );
    assert.match(
      configError(() => lbSettings(new Env({ NSM_PORT: "1" }))),
      /^NSM_NETWORK_SERVICES=/,
    );
  });
});
