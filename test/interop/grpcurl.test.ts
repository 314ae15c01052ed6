// SPDX-License-Identifier: Apache-2.0
/**
 * grpcurl (the real one, built by scripts/peers.sh) against our registry and nsmgr of a local
 * runtime started with `nsm up --insecure`, with .proto files that are not ours to decide the wire:
 * upstream's own (github.com/networkservicemesh/api in the Go module cache, when the module proxy
 * served it) and, always, the repository's proto/ (what our code is generated from). Each set:
 * Register + Find of an NSE, a watch that sees an NSE registered after it started, and Requests
 * with bad input answered with InvalidArgument; a Request naming its netns as upstream's NSC does
 * (`inode://dev/ino`) is refused. Then the same with mTLS on a secure runtime (`nsm up`): grpcurl
 * holds an X.509-SVID issued from the runtime's CA; without one, or with one of a stranger CA of the
 * same trust domain, the handshake is refused.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createCa, loadCa } from "../../src/security/ca.js";
import { missingPeers, peerPath } from "../helpers/peers.js";
import { EXAMPLE, linksOf, REPO, skipReason, type TestRuntime, testRuntime } from "../local/helpers.js";

interface ProtoSet {
  readonly name: string;
  /** -import-path roots. */
  readonly importPaths: string[];
  /** -proto files (relative to an import path) for the registry and for networkservice. */
  readonly registry: string;
  readonly networkservice: string;
}

/** upstream's .proto files from the Go module cache, or why there are none. */
function upstreamProtos(): ProtoSet | string {
  let modcache: string;
  try {
    modcache = execFileSync("go", ["env", "GOMODCACHE"], { encoding: "utf8" }).trim();
  } catch (err) {
    return `go env GOMODCACHE failed: ${(err as Error).message}`;
  }
  const dir = join(modcache, "github.com", "networkservicemesh");
  const versions = existsSync(dir) ? readdirSync(dir).filter((d) => d.startsWith("api@")) : [];
  const newest = versions.sort().at(-1);
  if (!newest)
    return `github.com/networkservicemesh/api is not in the Go module cache (${dir}): the upstream NSM peers were not built (see ${join("/var/cache/nsm-peers", "failed")})`;
  const api = join(dir, newest, "pkg", "api");
  return {
    name: `upstream ${newest}`,
    importPaths: [join(dir, newest, "pkg", "api"), modcache, join(dir, newest)],
    registry: relProto(api, "registry", "registry.proto"),
    networkservice: relProto(api, "networkservice", "networkservice.proto"),
  };
}

function relProto(root: string, dir: string, file: string): string {
  return existsSync(join(root, dir, file)) ? join(dir, file) : file;
}

const OURS: ProtoSet = {
  name: "repository proto/",
  importPaths: [join(REPO, "proto"), join(REPO, "proto", "networkservice")],
  registry: "registry/registry.proto",
  networkservice: "networkservice.proto",
};

interface Call {
  code: number;
  stdout: string;
  stderr: string;
}

function grpcurlArgs(protos: ProtoSet, proto: string, socket: string, method: string, data: string, extra: string[]) {
  return [
    // plaintext unless the caller asks for TLS (`-insecure`: grpcurl cannot verify a SPIFFE server
    // certificate, which names no host; our server still verifies grpcurl's).
    ...(extra.includes("-insecure") ? [] : ["-plaintext"]),
    ...protos.importPaths.flatMap((p) => ["-import-path", p]),
    "-proto",
    proto,
    "-d",
    data,
    ...extra,
    // grpcurl's -unix flag dials TCP in v1.9.3 as built here; a unix:// target works.
    `unix://${socket}`,
    method,
  ];
}

/** Runs grpcurl to completion. */
function grpcurl(protos: ProtoSet, proto: string, socket: string, method: string, data: string, extra: string[] = []) {
  return new Promise<Call>((resolve) => {
    const child = spawn(peerPath("grpcurl"), grpcurlArgs(protos, proto, socket, method, data, extra), {
      stdio: ["ignore", "pipe", "pipe"],
    });
    collect(child).then(resolve);
  });
}

function collect(child: ChildProcess): Promise<Call> {
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d) => {
    stdout += d;
  });
  child.stderr?.on("data", (d) => {
    stderr += d;
  });
  return new Promise((resolve) => child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr })));
}

/** The values of every top-level JSON object grpcurl printed (it prints one per message). */
function messages(stdout: string): any[] {
  const out: any[] = [];
  let depth = 0;
  let start = -1;
  for (let i = 0; i < stdout.length; i++) {
    const c = stdout[i];
    if (c === "{") {
      if (depth === 0) start = i;
      depth++;
    } else if (c === "}") {
      depth--;
      if (depth === 0) out.push(JSON.parse(stdout.slice(start, i + 1)));
    }
  }
  return out;
}

const skip = skipReason() ?? missingPeers("grpcurl");
const upstream = upstreamProtos();
const sets: [ProtoSet, string | undefined][] = [
  [
    typeof upstream === "string" ? { ...OURS, name: "upstream" } : upstream,
    typeof upstream === "string" ? upstream : undefined,
  ],
  [OURS, undefined],
];

describe("interop: grpcurl against our registry and nsmgr (nsm up --insecure)", { skip }, () => {
  let rt: TestRuntime;
  let registrySocket: string;
  let nsmgrSocket: string;

  before(async () => {
    rt = testRuntime("grpcurl");
    await rt.ok("up", "--insecure");
    registrySocket = join(rt.dir, "registry.sock");
    nsmgrSocket = join(rt.dir, "nodes", "node-1", "nsm.io.sock");
  });
  after(() => rt?.cleanup());

  for (const [protos, setSkip] of sets) {
    describe(`with ${protos.name} .proto files`, { skip: setSkip }, () => {
      const tag = protos === OURS ? "ours" : "upstream";
      const nse = (name: string) =>
        JSON.stringify({
          name,
          network_service_names: [`grpcurl-${tag}`],
          url: "tcp://127.0.0.1:1",
          network_service_labels: { [`grpcurl-${tag}`]: { labels: { app: "grpcurl" } } },
        });

      it("Register then Find an NSE by name on the registry", async () => {
        const reg = await grpcurl(
          protos,
          protos.registry,
          registrySocket,
          "registry.NetworkServiceEndpointRegistry/Register",
          nse(`nse-${tag}-1`),
        );
        assert.equal(reg.code, 0, reg.stderr);
        const registered = messages(reg.stdout)[0];
        assert.equal(registered.name, `nse-${tag}-1`);
        assert.ok(registered.expirationTime, "the registry sets an expiration time");
        const find = await grpcurl(
          protos,
          protos.registry,
          registrySocket,
          "registry.NetworkServiceEndpointRegistry/Find",
          JSON.stringify({ network_service_endpoint: { name: `nse-${tag}-1` } }),
        );
        assert.equal(find.code, 0, find.stderr);
        const found = messages(find.stdout);
        assert.equal(found.length, 1, find.stdout);
        assert.equal(found[0].networkServiceEndpoint.name, `nse-${tag}-1`);
        assert.deepEqual(found[0].networkServiceEndpoint.networkServiceNames, [`grpcurl-${tag}`]);
        assert.equal(found[0].networkServiceEndpoint.url, "tcp://127.0.0.1:1");
      });

      it("Find also lists the node's forwarder, registered by our runtime", async () => {
        const find = await grpcurl(
          protos,
          protos.registry,
          registrySocket,
          "registry.NetworkServiceEndpointRegistry/Find",
          JSON.stringify({ network_service_endpoint: { name: "forwarder-node-1" } }),
        );
        assert.equal(find.code, 0, find.stderr);
        const [f] = messages(find.stdout);
        assert.equal(f?.networkServiceEndpoint?.name, "forwarder-node-1", find.stdout);
      });

      it("a watching Find sees an NSE registered after it started", async () => {
        const watch = spawn(
          peerPath("grpcurl"),
          grpcurlArgs(
            protos,
            protos.registry,
            registrySocket,
            "registry.NetworkServiceEndpointRegistry/Find",
            JSON.stringify({ network_service_endpoint: { network_service_names: [`grpcurl-${tag}`] }, watch: true }),
            ["-max-time", "6"],
          ),
          { stdio: ["ignore", "pipe", "pipe"] },
        );
        const done = collect(watch);
        await new Promise((r) => setTimeout(r, 1000));
        const reg = await grpcurl(
          protos,
          protos.registry,
          registrySocket,
          "registry.NetworkServiceEndpointRegistry/Register",
          nse(`nse-${tag}-2`),
        );
        assert.equal(reg.code, 0, reg.stderr);
        const out = await done;
        assert.match(
          out.stderr,
          /DeadlineExceeded/,
          `the watch stays open until grpcurl's -max-time (exit ${out.code}): ${out.stderr}${out.stdout}`,
        );
        const names = messages(out.stdout).map((m) => m.networkServiceEndpoint?.name);
        assert.ok(names.includes(`nse-${tag}-1`), `the existing NSE first: ${names}`);
        assert.ok(names.includes(`nse-${tag}-2`), `then the new one: ${names}`);
      });

      it("nsmgr answers a Request without a connection with InvalidArgument", async () => {
        const r = await grpcurl(
          protos,
          protos.networkservice,
          nsmgrSocket,
          "networkservice.NetworkService/Request",
          "{}",
        );
        assert.notEqual(r.code, 0, r.stdout);
        assert.match(r.stderr, /Code: InvalidArgument/, r.stderr);
      });

      it("nsmgr answers a Request for an unknown mechanism-less, service-less connection with InvalidArgument", async () => {
        const r = await grpcurl(
          protos,
          protos.networkservice,
          nsmgrSocket,
          "networkservice.NetworkService/Request",
          JSON.stringify({ connection: { id: "grpcurl-bad" } }),
        );
        assert.notEqual(r.code, 0, r.stdout);
        assert.match(r.stderr, /Code: InvalidArgument/, r.stderr);
      });

      it("the registry refuses an NSE with no name and a URL that is not one, with InvalidArgument", async () => {
        const r = await grpcurl(
          protos,
          protos.registry,
          registrySocket,
          "registry.NetworkServiceEndpointRegistry/Register",
          JSON.stringify({ network_service_names: ["x"], url: "not a url" }),
        );
        assert.notEqual(r.code, 0, r.stdout);
        assert.match(r.stderr, /Code: InvalidArgument/, r.stderr);
      });
    });
  }

  describe("a Request naming its netns as upstream's NSC does (inode://dev/ino, no fd passed)", () => {
    before(async () => {
      await rt.ok("apply", "-f", EXAMPLE);
    });

    it("is InvalidArgument from our forwarder, and no nsm-9 interface is created", async () => {
      const links = () => rt.netns().flatMap((n) => linksOf(n).map((l) => l.ifname));
      const before = links();
      const r = await grpcurl(
        OURS,
        OURS.networkservice,
        nsmgrSocket,
        "networkservice.NetworkService/Request",
        JSON.stringify({
          connection: { id: "grpcurl-inode", network_service: "kernel2kernel", payload: "ETHERNET" },
          mechanism_preferences: [
            { cls: "LOCAL", type: "KERNEL", parameters: { inodeURL: "inode://4/4026531840", name: "nsm-9" } },
          ],
        }),
        ["-max-time", "30"],
      );
      assert.notEqual(r.code, 0, r.stdout);
      assert.match(r.stderr, /Code: InvalidArgument/, r.stderr);
      assert.match(r.stderr, /inode:\/\/4\/4026531840/, "the message names the refused URL");
      assert.ok(!links().includes("nsm-9"), "no interface named nsm-9");
      assert.deepEqual(links().sort(), before.sort(), "no link added or removed anywhere in the runtime");
    });
  });
});

describe("interop: grpcurl with mTLS, holding an X.509-SVID of our runtime's CA (nsm up)", { skip }, () => {
  let rt: TestRuntime;
  const tls = (name: string) => [
    "-insecure",
    "-cert",
    join(rt.dir, `${name}.crt`),
    "-key",
    join(rt.dir, `${name}.key`),
  ];

  before(async () => {
    rt = testRuntime("grpcurl-mtls");
    await rt.ok("up");
    const ca = await loadCa(JSON.parse(readFileSync(join(rt.dir, "ca.json"), "utf8")));
    const stranger = await createCa({ trustDomain: ca.trustDomain });
    for (const [name, from] of [
      ["svid", ca],
      ["stranger", stranger],
    ] as const) {
      const svid = await from.issue(`spiffe://${ca.trustDomain}/ns/default/pod/grpcurl`);
      writeFileSync(join(rt.dir, `${name}.crt`), svid.certificatesPem);
      writeFileSync(join(rt.dir, `${name}.key`), svid.privateKeyPem, { mode: 0o600 });
    }
  });
  after(() => rt?.cleanup());

  it("Find on the registry answers with the node's forwarder", async () => {
    const r = await grpcurl(
      OURS,
      OURS.registry,
      join(rt.dir, "registry.sock"),
      "registry.NetworkServiceEndpointRegistry/Find",
      JSON.stringify({ network_service_endpoint: { name: "forwarder-node-1" } }),
      tls("svid"),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(messages(r.stdout)[0]?.networkServiceEndpoint?.name, "forwarder-node-1", r.stdout);
  });

  it("nsmgr answers a Request without a connection with InvalidArgument", async () => {
    const r = await grpcurl(
      OURS,
      OURS.networkservice,
      join(rt.dir, "nodes", "node-1", "nsm.io.sock"),
      "networkservice.NetworkService/Request",
      "{}",
      tls("svid"),
    );
    assert.match(r.stderr, /Code: InvalidArgument/, r.stderr);
  });

  for (const [what, extra] of [
    ["no client certificate", ["-insecure"]],
    ["a certificate of another CA with the same trust domain", ["stranger"]],
  ] as const) {
    it(`with ${what}, the registry refuses the TLS handshake`, async () => {
      const args = extra[0] === "stranger" ? tls("stranger") : [...extra];
      const r = await grpcurl(
        OURS,
        OURS.registry,
        join(rt.dir, "registry.sock"),
        "registry.NetworkServiceEndpointRegistry/Find",
        "{}",
        [...args, "-max-time", "3"],
      );
      assert.notEqual(r.code, 0, r.stdout);
      assert.equal(messages(r.stdout).length, 0, r.stdout);
      assert.match(r.stderr, /Failed to dial target host/, r.stderr);
    });
  }
});
