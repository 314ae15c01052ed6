// SPDX-License-Identifier: Apache-2.0
/**
 * Test support for the kernel forwarder tests (fake and real kernel): a forwarder chain built
 * from `kernelForwarderElements` the way `createForwarder` plugs them in, and a hop to another
 * node's forwarder. Not exported from the package index.
 */

import { ConnectionSchema, clone } from "../../api/index.js";
import { bind, chain, type NetworkServiceElement, type NetworkServiceHandler } from "../../sdk/core/chain.js";
import { CallContext } from "../../sdk/core/context.js";
import { clientUrlClient } from "../../sdk/networkservice/common/clienturl/index.js";
import { connectServer } from "../../sdk/networkservice/common/connect/index.js";
import { filterMechanismsClient } from "../../sdk/networkservice/common/filtermechanisms/index.js";
import { mechanismsClient, mechanismsServer } from "../../sdk/networkservice/common/mechanisms/index.js";
import { mechanismTranslationClient } from "../../sdk/networkservice/common/mechanismtranslation/index.js";
import { metadataClient, metadataServer } from "../../sdk/networkservice/common/metadata/index.js";
import type { KernelForwarderElements } from "./forwarder/elements.js";
import { insecureNetnsOwnership } from "./xconnect/ownership.js";

/**
 * The fake-kernel tests name namespaces by arbitrary paths, which no ownership check accepts:
 * they turn it off explicitly (the ownership tests are in test/kernel/ownership.test.ts).
 */
export const uncheckedNetns = insecureNetnsOwnership();

/**
 * The other node's forwarder, reached through its nsmgr: it gives the connection its own id
 * (`<prefix><id>`, its path segment), and answers with ours.
 */
export function hop(target: () => NetworkServiceHandler, prefix = "f2-"): NetworkServiceElement {
  const remoteId = (id: string) => `${prefix}${id}`;
  const ctx = () => CallContext.create();
  return {
    name: "hop",
    async request(req) {
      const connection = clone(ConnectionSchema, req.connection!);
      connection.id = remoteId(connection.id);
      const back = clone(ConnectionSchema, await target().request({ ...req, connection }, ctx()));
      back.id = req.connection!.id;
      return back;
    },
    async close(conn) {
      const c = clone(ConnectionSchema, conn);
      c.id = remoteId(c.id);
      await target().close(c, ctx());
    },
  };
}

/** A forwarder's server chain with its client towards `clientUrl`, ending in `downstream`. */
export function forwarderChain(
  els: KernelForwarderElements,
  clientUrl: string,
  downstream: NetworkServiceElement,
): NetworkServiceHandler {
  return bind(
    chain(
      metadataServer(),
      mechanismsServer(els.serverMechanisms),
      ...els.additional,
      connectServer(
        chain(
          metadataClient(),
          clientUrlClient(clientUrl),
          mechanismTranslationClient(),
          mechanismsClient(els.clientMechanisms),
          ...els.additionalClient,
          filterMechanismsClient(),
          downstream,
        ),
      ),
    ),
  );
}
