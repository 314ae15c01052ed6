// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ConfigError, Env } from "./env.js";
import { proxySettings } from "./nse-proxy.js";
import { podTemplateOf } from "./nse-supplier.js";

const POD = 'kind: Pod\nmetadata:\n  name: nse-{{ index .Labels "nodeName" }}\nspec:\n  containers: []\n';

describe("nsm nse supplier: the pod template", () => {
  const dir = mkdtempSync(join(tmpdir(), "supplier-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("reads NSM_POD_DESCRIPTION_FILE, or NSM_POD_DESCRIPTION inline (which wins)", () => {
    const file = join(dir, "pod.yaml");
    writeFileSync(file, POD);
    assert.equal(podTemplateOf(new Env({ NSM_POD_DESCRIPTION_FILE: file })), POD);
    assert.equal(
      podTemplateOf(new Env({ NSM_POD_DESCRIPTION_FILE: file, NSM_POD_DESCRIPTION: "x" + POD.slice(1) })).at(0),
      "x",
    );
  });

  it("a missing or broken template is one line naming the variable", () => {
    const absent = join(dir, "absent.yaml");
    assert.throws(
      () => podTemplateOf(new Env({ NSM_POD_DESCRIPTION_FILE: absent })),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.message.startsWith(`NSM_POD_DESCRIPTION_FILE="${absent}": cannot read it: ENOENT`),
    );
    const notPod = join(dir, "deployment.yaml");
    writeFileSync(notPod, "kind: Deployment\nmetadata: {name: x}\nspec: {}\n");
    assert.throws(
      () => podTemplateOf(new Env({ NSM_POD_DESCRIPTION_FILE: notPod })),
      (e: unknown) =>
        e instanceof ConfigError &&
        e.message === `NSM_POD_DESCRIPTION_FILE="${notPod}": the pod template is a Deployment, not a Pod`,
    );
  });
});

describe("nsm nse proxy: settings", () => {
  it("defaults: http-gateway, 0.0.0.0:8080 → port 80, 10 s", () => {
    const s = proxySettings(new Env({}));
    assert.deepEqual(s.services, ["http-gateway"]);
    assert.deepEqual(s.listenOn, { host: "0.0.0.0", port: 8080 });
    assert.equal(s.targetPort, 80);
    assert.equal(s.timeoutMs, 10_000);
    assert.deepEqual(proxySettings(new Env({ NSM_PROXY_LISTEN_ON: "[::1]:9000" })).listenOn, {
      host: "::1",
      port: 9000,
    });
    assert.deepEqual(proxySettings(new Env({ NSM_PROXY_LISTEN_ON: ":81" })).listenOn, { host: "0.0.0.0", port: 81 });
  });

  it("a bad listen address or port names the variable", () => {
    assert.throws(
      () => proxySettings(new Env({ NSM_PROXY_LISTEN_ON: "8080" })),
      (e: unknown) => e instanceof ConfigError && /^NSM_PROXY_LISTEN_ON="8080": expected host:port/.test(e.message),
    );
    assert.throws(
      () => proxySettings(new Env({ NSM_PROXY_TARGET_PORT: "70000" })),
      (e: unknown) => e instanceof ConfigError && e.message.startsWith('NSM_PROXY_TARGET_PORT="70000"'),
    );
  });
});
