// SPDX-License-Identifier: Apache-2.0
// A custom client: the reference client (NSM_* env, requests NSM_NETWORK_SERVICES through nsmgr,
// refreshes and heals the connections, closes them on SIGTERM) plus one element that applies the
// DNS configuration each connection brings, as resolv.conf lines in RESOLV_CONF.
import { rmSync, writeFileSync } from "node:fs";
import { type NetworkServiceClient, runClient } from "nsm-ts/sdk";

const resolvConf = process.env.RESOLV_CONF ?? "/tmp/nsm-sdk-resolv.conf";

const applyDns: NetworkServiceClient = {
  name: "apply-dns",
  async request(req, ctx, next) {
    const conn = await next.request(req, ctx); // what the endpoint (and the path) returned
    const lines = (conn.context?.dnsContext?.configs ?? []).flatMap((c) => [
      ...c.dnsServerIps.map((ip) => `nameserver ${ip}`),
      ...(c.searchDomains.length > 0 ? [`search ${c.searchDomains.join(" ")}`] : []),
    ]);
    writeFileSync(resolvConf, lines.map((l) => `${l}\n`).join(""));
    const routes = conn.context?.ipContext?.srcRoutes.map((r) => r.prefix);
    ctx.log.info({ id: conn.id, routes, dns: lines }, "connection ready");
    return conn;
  },
  async close(conn, ctx, next) {
    rmSync(resolvConf, { force: true });
    return next.close(conn, ctx);
  },
};

process.exitCode = await runClient(process.env, { additional: [applyDns] });
