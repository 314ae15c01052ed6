// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm nse firewall`: a passthrough endpoint with an ACL (stands in for upstream
 * cmd-nse-firewall-vpp; the same image without an ACL file is the composition's "passthrough").
 * Env (upstream names): NSM_NAME (firewall-server), NSM_CONNECT_TO
 * (unix:///var/lib/networkservicemesh/nsm.io.sock), NSM_SERVICE_NAME (upstream) or
 * NSM_SERVICE_NAMES (required: the service it serves and requests again), NSM_LABELS (the labels
 * it registers with and shows the next hop), NSM_ACL_CONFIG_PATH (/etc/vppagent-firewall/config.yaml;
 * a missing file at the default path is no ACL, as upstream), NSM_ACL_CONFIG (ours: the same YAML
 * inline, for runtimes without ConfigMap volumes), NSM_EXPIRE (1m), NSM_LOG_LEVEL; security as
 * ./security.ts. It does not register the NetworkService (the example's CR carries the `matches`).
 *
 * Data plane: each connection's incoming and outgoing KERNEL interfaces share a Linux bridge in
 * the endpoint's netns (an L2 bump in the wire, as upstream's VPP xconnect); the ACL filters the
 * frames entering from the client side with nftables (src/kernel/networkservice/acl). A malformed
 * ACL stops the endpoint at start with one line naming the file and the field.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { NetworkServiceEndpointSchema } from "../api/gen/registry_pb.js";
import { createNetlinkKernel } from "../kernel/index.js";
import {
  AclConfigError,
  type AclRule,
  installAcl,
  OUTGOING_PORT_PREFIX,
  parseAclConfig,
  removeAcl,
} from "../kernel/networkservice/acl/index.js";
import { kernelPassthroughServer, prepareBridgeNetns } from "../kernel/networkservice/passthrough/index.js";
import { CallContext } from "../sdk/core/context.js";
import { closeChannel, dialChannel, parseNsmUrl } from "../sdk/grpc/dial.js";
import { registryClients } from "../sdk/grpc/registry.js";
import { createEndpoint } from "../sdk/networkservice/chains/endpoint/index.js";
import { kernelMechanismServer } from "../sdk/networkservice/common/kernelmechanism/index.js";
import { mechanismsServer } from "../sdk/networkservice/common/mechanisms/index.js";
import { passthroughServer } from "../sdk/networkservice/common/passthrough/index.js";
import { registryClient } from "../sdk/registry/chains/client/index.js";
import { parseLabels } from "../sdk/tools/labels.js";
import { ConfigError, Env } from "./env.js";
import { roleSecurity } from "./security.js";
import { listen, roleLogger, shutdown, untilSignal } from "./serve.js";

const DEFAULT_ACL_PATH = "/etc/vppagent-firewall/config.yaml";

/** The ACL rules the environment asks for (inline, else the file), or a ConfigError naming the file and field. */
export function aclRulesOf(env: Env): AclRule[] {
  const inline = env.raw("NSM_ACL_CONFIG");
  const path = env.string("NSM_ACL_CONFIG_PATH", DEFAULT_ACL_PATH);
  if (!inline && path === DEFAULT_ACL_PATH && !existsSync(path)) return [];
  const [variable, shown, text] = inline
    ? ["NSM_ACL_CONFIG", "(inline)", inline]
    : ["NSM_ACL_CONFIG_PATH", path, readAcl(path)];
  try {
    return parseAclConfig(text, shown);
  } catch (err) {
    if (err instanceof AclConfigError) throw new ConfigError(variable, shown, `${err.field}: ${err.reason}`);
    throw err;
  }
}

function readAcl(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(
      "NSM_ACL_CONFIG_PATH",
      path,
      `cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
}

interface FirewallConfig {
  readonly name: string;
  readonly connectTo: string;
  readonly service: string;
  readonly labels: Record<string, string>;
  readonly rules: AclRule[];
  readonly expirationMs: number;
}

function firewallConfig(env: Env): FirewallConfig {
  const connectTo = env.parsed("NSM_CONNECT_TO", "unix:///var/lib/networkservicemesh/nsm.io.sock", (v) => {
    parseNsmUrl(v);
    return v;
  });
  const services = env.list("NSM_SERVICE_NAMES", env.string("NSM_SERVICE_NAME", ""));
  if (services.length !== 1)
    throw new ConfigError(
      "NSM_SERVICE_NAME",
      services.join(","),
      "needs exactly one service name (the one it passes through)",
    );
  return {
    name: env.string("NSM_NAME", "firewall-server"),
    connectTo,
    service: services[0]!,
    labels: env.parsed("NSM_LABELS", "", parseLabels),
    rules: aclRulesOf(env),
    expirationMs: env.duration("NSM_EXPIRE", "1m"),
  };
}

/** `nsm nse firewall`: serves, registers through nsmgr, and stops on SIGTERM/SIGINT. */
export async function runFirewall(vars: NodeJS.ProcessEnv = process.env): Promise<number> {
  const env = new Env(vars);
  const cfg = firewallConfig(env);
  const log = roleLogger(env, cfg.name);
  const kernel = createNetlinkKernel();
  await prepareBridgeNetns(kernel);
  await installAcl(cfg.rules);
  log.info({ rules: cfg.rules.map((r) => r.name) }, "ACL installed");
  const sec = await roleSecurity(env, log);
  const monitorPolicies = await sec.policies("monitor");
  const inodeUrl = `file:///proc/${process.pid}/ns/net`;
  const endpoint = createEndpoint({
    name: cfg.name,
    log,
    ...sec.endpoint(await sec.policies("server")),
    monitorService: (service) => sec.monitor(service, monitorPolicies),
    additional: [
      mechanismsServer({ KERNEL: kernelMechanismServer({ inodeUrl }) }),
      kernelPassthroughServer({ kernel, log }),
      passthroughServer({
        name: cfg.name,
        connectTo: cfg.connectTo,
        labels: cfg.labels,
        inodeUrl,
        outgoingPrefix: OUTGOING_PORT_PREFIX,
        ...sec.dialOptions(),
        authorize: sec.clientAuthorize(await sec.policies("client")),
      }),
    ],
  });
  const dir = mkdtempSync(join(tmpdir(), `${cfg.name}-`));
  const server = new grpc.Server();
  endpoint.register(server);
  const [url] = await listen(server, [`unix://${dir}/listen.on`], sec, log);
  const lifetime = new AbortController();
  const channel = dialChannel(cfg.connectTo, sec.dialOptions());
  const registration = registryClient({
    registry: registryClients(channel),
    signal: lifetime.signal,
    security: sec.registryClient(await sec.policies("registryClient")),
  });
  const record = create(NetworkServiceEndpointSchema, {
    name: cfg.name,
    networkServiceNames: [cfg.service],
    networkServiceLabels: { [cfg.service]: { labels: cfg.labels } },
    url,
    expirationTime: { seconds: BigInt(Math.floor((Date.now() + cfg.expirationMs) / 1000)), nanos: 0 },
  });
  await registration.nse.register(record, CallContext.create({ deadline: Date.now() + 15_000, log }));
  log.info({ url, service: cfg.service, labels: cfg.labels }, "firewall serving and registered");
  await untilSignal();
  lifetime.abort();
  endpoint.dispose();
  await shutdown(server);
  closeChannel(channel);
  rmSync(dir, { recursive: true, force: true });
  await removeAcl().catch((err) => log.warn({ err: String(err) }, "ACL table not removed"));
  await kernel.close();
  sec.close();
  log.info("firewall stopped");
  return 0;
}
