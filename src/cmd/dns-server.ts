// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm dns-server`: a tiny authoritative DNS server answering from a fixed table (ours; it stands
 * in for the CoreDNS sidecar that upstream's dns example runs beside its endpoint).
 * Env: NSM_DNS_RECORDS (required: `name=ip[;ip],name2=ip`, e.g. `my.coredns.service=172.16.1.100`),
 * NSM_LISTEN_ON (`0.0.0.0:53`; `ADDRESS:PORT`, `[v6]:PORT`), NSM_LOG_LEVEL.
 * Serves UDP until SIGTERM/SIGINT.
 */
import { parseDnsRecords, parseServer, serveDnsRecords } from "../sdk/networkservice/common/dnscontext/index.js";
import { Env } from "./env.js";
import { roleLogger, untilSignal } from "./serve.js";

export async function runDnsServer(vars: NodeJS.ProcessEnv = process.env): Promise<number> {
  const env = new Env(vars);
  const records = env.parsed("NSM_DNS_RECORDS", "", (v) => {
    const r = parseDnsRecords(v);
    if (Object.keys(r).length === 0) throw new Error("is required (name=ip,...)");
    return r;
  });
  const listen = env.parsed("NSM_LISTEN_ON", "0.0.0.0:53", parseServer);
  const log = roleLogger(env, "dns-server");
  const socket = await serveDnsRecords(records, listen.address, listen.port);
  log.info({ address: listen.address, port: socket.address().port, records }, "dns server serving");
  await untilSignal();
  socket.close();
  return 0;
}
