// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { bind, chain, type NetworkServiceElement } from "../../../core/chain.js";
import { CallContext } from "../../../core/context.js";
import { Code } from "../../../core/errors.js";
import { nscRequest } from "../../../testing/requests.js";
import { type ServedChain, serveChain } from "../../../testing/serve.js";
import { beginClient } from "../begin/index.js";
import { withClientUrl } from "../clienturl/index.js";
import { metadataClient } from "../metadata/index.js";
import { channelOf, dialClient, storedChannelOf } from "./index.js";

const request = (id = "c1") => nscRequest("svc", id);

/** Records the channel each call carries and the one stored for the connection. */
function spy() {
  const channels: (grpc.Client | undefined)[] = [];
  const element: NetworkServiceElement = {
    name: "spy",
    request: (req, ctx, next) => {
      channels.push(channelOf(ctx));
      assert.equal(storedChannelOf(ctx), channelOf(ctx));
      return next.request(req, ctx);
    },
    close: (conn, ctx, next) => {
      channels.push(channelOf(ctx));
      return next.close(conn, ctx);
    },
  };
  return { element, channels };
}

const isShutdown = (c: grpc.Client | undefined) =>
  c?.getChannel().getConnectivityState(false) === grpc.connectivityState.SHUTDOWN;

describe("dial", () => {
  let hopA: ServedChain;
  let hopB: ServedChain;
  before(async () => {
    hopA = await serveChain("dial-a");
    hopB = await serveChain("dial-b");
  });
  after(async () => {
    await hopA.stop();
    await hopB.stop();
  });

  const setup = () => {
    const s = spy();
    return {
      ...s,
      h: bind(chain(beginClient(), metadataClient(), dialClient({ dialTimeoutMs: 2000, lingerMs: 0 }), s.element)),
    };
  };
  const at = (url: string) => withClientUrl(CallContext.create(), url);

  it("dials the client URL once per connection and reuses the channel on refresh", async () => {
    const { h, channels } = setup();
    await h.request(request(), at(hopA.url));
    await h.request(request(), at(hopA.url));
    assert.ok(channels[0] instanceof grpc.Client);
    assert.equal(channels[1], channels[0]);
    assert.equal(channels[0]!.getChannel().getConnectivityState(false), grpc.connectivityState.READY);
    await h.close(request().connection!, at(hopA.url));
    assert.equal(channels[2], channels[0], "Close goes out on the same channel");
    assert.ok(isShutdown(channels[0]), "the last lease released closes the channel");
  });

  it("keeps a released channel for the next connection to the same hop while it lingers", async () => {
    const s = spy();
    const h = bind(
      chain(beginClient(), metadataClient(), dialClient({ dialTimeoutMs: 2000, lingerMs: 200 }), s.element),
    );
    await h.request(request("l1"), at(hopA.url));
    await h.close(request("l1").connection!, at(hopA.url));
    assert.equal(s.channels[0]!.getChannel().getConnectivityState(false), grpc.connectivityState.READY);
    await h.request(request("l2"), at(hopA.url));
    assert.equal(s.channels[2], s.channels[0], "the next connection reuses the lingering channel");
    await h.close(request("l2").connection!, at(hopA.url));
    await new Promise((r) => setTimeout(r, 400));
    assert.ok(isShutdown(s.channels[0]), "closed once the linger time passed without a lease");
  });

  it("redials when the client URL changes and lets the old channel go", async () => {
    const { h, channels } = setup();
    await h.request(request(), at(hopA.url));
    await h.request(request(), at(hopB.url));
    assert.notEqual(channels[1], channels[0]);
    assert.ok(isShutdown(channels[0]));
    await h.close(request().connection!, at(hopB.url));
  });

  it("fails with Unavailable naming the URL when nobody answers, and calls nothing after it", async () => {
    const s = spy();
    const h = bind(chain(beginClient(), metadataClient(), dialClient({ dialTimeoutMs: 200 }), s.element));
    const url = "unix:///nonexistent/nsm-dial-test.sock";
    await assert.rejects(h.request(request(), at(url)), (err: unknown) => {
      assert.equal((err as { code?: number }).code, Code.Unavailable);
      assert.match(String(err), /nsm-dial-test\.sock/);
      return true;
    });
    assert.equal(s.channels.length, 0);
  });

  it("needs a client URL (InvalidArgument)", async () => {
    const { h } = setup();
    await assert.rejects(h.request(request(), CallContext.create()), { code: Code.InvalidArgument });
  });

  it("dials for a Close of a connection it never saw (after a restart)", async () => {
    // Without begin in front (begin drops a Close of a connection it does not know).
    const { element, channels } = spy();
    const h = bind(chain(metadataClient(), dialClient({ dialTimeoutMs: 2000, lingerMs: 0 }), element));
    await h.close(request("unknown").connection!, at(hopA.url));
    assert.ok(channels[0] instanceof grpc.Client);
    assert.ok(isShutdown(channels[0]));
  });
});
