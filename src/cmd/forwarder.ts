// SPDX-License-Identifier: Apache-2.0
/**
 * `nsm forwarder`: the kernel forwarder (veth for local connections).
 * Env: NSM_NAME (forwarder), NSM_LABELS (p2p:true), NSM_NSNAME (forwarder), NSM_CONNECT_TO
 * (unix:///var/lib/networkservicemesh/nsm.io.sock), NSM_LISTEN_ON (unix:///listen.on.sock),
 * NSM_DIAL_TIMEOUT (750ms), NSM_LOG_LEVEL. Runs in the node's network namespace.
 */

import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { NetworkServiceEndpointSchema } from "../api/gen/registry_pb.js";
import { createNetlinkKernel } from "../kernel/index.js";
import { kernelXconnectClient, kernelXconnectServer } from "../kernel/networkservice/index.js";
import { CallContext } from "../sdk/core/context.js";
import { createForwarder } from "../sdk/networkservice/chains/forwarder/index.js";
import { registryClient } from "../sdk/registry/chains/client/index.js";
import { registryClients } from "../sdk/registry/grpc.js";
import { closeChannel, dialChannel, parseNsmUrl } from "../sdk/tools/grpcurl.js";
import { parseLabels } from "../sdk/tools/labels.js";
import { Env } from "./env.js";
import { listen, listenUrls, roleLogger, shutdown, untilSignal } from "./serve.js";

export async function runForwarder(vars: NodeJS.ProcessEnv = process.env): Promise<number> {
  const env = new Env(vars);
  const name = env.string("NSM_NAME", "forwarder");
  const labels = env.parsed("NSM_LABELS", "p2p:true", parseLabels);
  const nsName = env.string("NSM_NSNAME", "forwarder");
  const connectTo = env.parsed("NSM_CONNECT_TO", "unix:///var/lib/networkservicemesh/nsm.io.sock", (v) => {
    parseNsmUrl(v);
    return v;
  });
  const listenOn = listenUrls(env, "NSM_LISTEN_ON", "unix:///listen.on.sock");
  const dialTimeoutMs = env.duration("NSM_DIAL_TIMEOUT", "750ms");
  const log = roleLogger(env, name);

  const lifetime = new AbortController();
  const kernel = createNetlinkKernel();
  const nsmgrChannel = dialChannel(connectTo);
  const viaNsmgr = registryClients(nsmgrChannel);
  const forwarder = createForwarder({
    name,
    nsRegistry: viaNsmgr.ns,
    nseRegistry: viaNsmgr.nse,
    dialTimeoutMs,
    additional: [kernelXconnectServer({ kernel })],
    additionalClient: [kernelXconnectClient()],
    log,
  });
  const server = new grpc.Server();
  forwarder.register(server);
  const [url] = await listen(server, listenOn);
  const registration = registryClient({ registry: viaNsmgr, signal: lifetime.signal });
  const record = create(NetworkServiceEndpointSchema, {
    name,
    networkServiceNames: [nsName],
    networkServiceLabels: { [nsName]: { labels } },
    url,
  });
  await registration.nse.register(record, CallContext.create({ deadline: Date.now() + 15_000, log }));
  log.info({ url, nsmgr: connectTo, labels }, "forwarder serving and registered");
  await untilSignal();
  lifetime.abort();
  forwarder.dispose();
  await shutdown(server);
  closeChannel(nsmgrChannel);
  await kernel.close();
  log.info("forwarder stopped");
  return 0;
}
