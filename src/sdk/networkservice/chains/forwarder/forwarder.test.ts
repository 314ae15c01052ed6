// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { NetworkServiceEndpointSchema, NetworkServiceSchema } from "../../../../api/gen/registry_pb.js";
import {
  Cls,
  ConnectionSchema,
  MechanismType,
  NetworkServiceRequestSchema,
  newMechanism,
  PathSchema,
  PathSegmentSchema,
} from "../../../../api/index.js";
import { CallContext } from "../../../core/context.js";
import { Code, NsmError } from "../../../core/errors.js";
import { checkRequest, injectError } from "../../../testing/elements.js";
import { fakeNseRegistry, fakeNsRegistry } from "../../../testing/fake-registry.js";
import { type Served, serveOnUnixSocket } from "../../../testing/serve.js";
import { kernelMechanismServer } from "../../common/kernelmechanism/index.js";
import { mechanismsServer } from "../../common/mechanisms/index.js";
import { createEndpoint, type Endpoint } from "../endpoint/index.js";
import { createForwarder } from "./index.js";

/** A request as nsmgr forwards it: segments nsc and nsmgr, index 1, a KERNEL preference. */
const request = (networkService = "svc") =>
  create(NetworkServiceRequestSchema, {
    connection: create(ConnectionSchema, {
      id: "nsmgr-id",
      networkService,
      path: create(PathSchema, {
        index: 1,
        pathSegments: [
          create(PathSegmentSchema, { name: "nsc", id: "nsc-id" }),
          create(PathSegmentSchema, { name: "nsmgr", id: "nsmgr-id" }),
        ],
      }),
    }),
    mechanismPreferences: [newMechanism(Cls.LOCAL, MechanismType.KERNEL, { name: "nsm-1" })],
  });
const ctx = () => CallContext.create();

describe("forwarder chain", () => {
  let nse: Endpoint;
  let served: Served;
  const offered: string[][] = [];
  before(async () => {
    nse = createEndpoint({
      name: "nse",
      additional: [
        checkRequest((req) => offered.push(req.mechanismPreferences.map((m) => `${m.cls}/${m.type}`))),
        injectError(() => new NsmError("service is full", Code.ResourceExhausted), {
          request: (req) => req.connection?.networkService === "full",
        }),
        mechanismsServer({ KERNEL: kernelMechanismServer() }),
      ],
    });
    served = await serveOnUnixSocket("fwd-nse", (s) => nse.register(s));
  });
  after(async () => {
    await served.stop();
    nse.dispose();
  });

  const forwarder = () =>
    createForwarder({
      name: "fwd",
      queryCache: false,
      nsRegistry: fakeNsRegistry([
        create(NetworkServiceSchema, { name: "svc", payload: "ETHERNET" }),
        create(NetworkServiceSchema, { name: "full", payload: "ETHERNET" }),
      ]),
      nseRegistry: fakeNseRegistry([
        create(NetworkServiceEndpointSchema, { name: "nse", networkServiceNames: ["svc", "full"], url: served.url }),
      ]),
    });

  it("selects the endpoint, offers it a local KERNEL mechanism and returns the whole path", async () => {
    const fwd = forwarder();
    try {
      const conn = await fwd.request(request(), ctx());
      assert.equal(conn.networkServiceEndpointName, "nse");
      assert.deepEqual(
        conn.path?.pathSegments.map((s) => s.name),
        ["nsc", "nsmgr", "fwd", "nse"],
      );
      assert.equal(conn.path?.index, 1);
      assert.equal(conn.mechanism?.type, MechanismType.KERNEL, "the client's side keeps its own mechanism");
      assert.deepEqual(offered.at(-1), [`${Cls.LOCAL}/${MechanismType.KERNEL}`]);
      await fwd.close(conn, ctx());
      assert.equal(nse.monitor.connections().length, 0, "Close reached the endpoint");
    } finally {
      fwd.dispose();
    }
  });

  it("returns the endpoint's error with its code", async () => {
    const fwd = forwarder();
    try {
      await assert.rejects(fwd.request(request("full"), ctx()), { code: Code.ResourceExhausted });
    } finally {
      fwd.dispose();
    }
  });

  it("a service without endpoints is NotFound", async () => {
    const fwd = forwarder();
    try {
      await assert.rejects(fwd.request(request("nothing"), ctx()), { code: Code.NotFound });
    } finally {
      fwd.dispose();
    }
  });
});
