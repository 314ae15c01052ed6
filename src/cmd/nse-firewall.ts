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
import { existsSync, readFileSync } from "node:fs";
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
import { kernelMechanismServer } from "../sdk/networkservice/common/kernelmechanism/index.js";
import { mechanismsServer } from "../sdk/networkservice/common/mechanisms/index.js";
import { passthroughServer } from "../sdk/networkservice/common/passthrough/index.js";
import { parseLabels } from "../sdk/tools/labels.js";
import { ConfigError, Env } from "./env.js";
import { connectToOf, serveEndpointRole } from "./nse-serve.js";
import { roleSecurity } from "./security.js";
import { roleLogger } from "./serve.js";

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
  const connectTo = connectToOf(env);
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
  const inodeUrl = `file:///proc/${process.pid}/ns/net`;
  const role = { ...cfg, services: [cfg.service], log, sec };
  return serveEndpointRole(
    role,
    [
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
    async () => {
      await removeAcl().catch((err) => log.warn({ err: String(err) }, "ACL table not removed"));
      await kernel.close();
    },
  );
}
