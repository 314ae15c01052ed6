// SPDX-License-Identifier: Apache-2.0
// A custom endpoint: the reference endpoint (NSM_* env, addresses from NSM_CIDR_PREFIX, KERNEL
// interfaces, registration through nsmgr) plus one element that gives every client a route and
// a DNS server, and logs who connected.
import {
  create,
  DNSConfigSchema,
  DNSContextSchema,
  type NetworkServiceServer,
  RouteSchema,
  runEndpoint,
} from "nsm-ts/sdk";

const route = process.env.EXAMPLE_ROUTE ?? "10.60.0.0/16";
const searchDomain = process.env.EXAMPLE_SEARCH_DOMAIN ?? "sdk.example";

const routeAndDns: NetworkServiceServer = {
  name: "route-and-dns",
  request(req, ctx, next) {
    const context = req.connection?.context;
    const ip = context?.ipContext;
    const me = ip?.dstIpAddrs[0]?.split("/")[0]; // this endpoint's address on the connection (IPAM ran)
    if (context && ip && me) {
      if (!ip.srcRoutes.some((r) => r.prefix === route)) ip.srcRoutes.push(create(RouteSchema, { prefix: route }));
      context.dnsContext ??= create(DNSContextSchema);
      const configs = context.dnsContext.configs;
      if (!configs.some((c) => c.dnsServerIps.includes(me)))
        configs.push(create(DNSConfigSchema, { dnsServerIps: [me], searchDomains: [searchDomain] }));
    }
    const client = req.connection?.path?.pathSegments[0]?.name;
    ctx.log.info({ client, address: ip?.srcIpAddrs[0], route }, `client ${client} connected`);
    return next.request(req, ctx);
  },
  close: (conn, ctx, next) => next.close(conn, ctx),
};

process.exitCode = await runEndpoint(process.env, { additional: [routeAndDns] });
