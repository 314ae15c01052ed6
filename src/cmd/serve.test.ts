// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import { ConnectionSchema, NetworkService, NetworkServiceRequestSchema } from "../api/index.js";
import { CallContext } from "../sdk/core/context.js";
import { closeChannel, dialChannel } from "../sdk/grpc/dial.js";
import { addService, grpcClient } from "../sdk/grpc/service.js";
import { serveWhenBuilt } from "./serve.js";

/** A role process that logs one debug and one info line every 20 ms (NSM_LOG_LEVEL=INFO). */
const SCRIPT = `
import { Env } from "./src/cmd/env.ts";
import { roleLogger } from "./src/cmd/serve.ts";
const log = roleLogger(new Env({ NSM_LOG_LEVEL: "INFO" }), "probe");
let i = 0;
setInterval(() => { log.debug({ i }, "debug line"); log.info({ i: i++ }, "info line"); }, 20);
process.stdout.write("ready\\n");
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("runtime log level (upstream: SIGUSR1 → TRACE, SIGUSR2 → back to NSM_LOG_LEVEL)", () => {
  it("starts at the configured level, logs debug after SIGUSR1 and stops again after SIGUSR2", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", SCRIPT], {
      cwd: new URL("../..", import.meta.url).pathname,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.once("data", () => resolve());
        child.once("exit", (code) => reject(new Error(`exited ${code}: ${stderr}`)));
      });
      const levels = () =>
        stderr
          .split("\n")
          .filter((l) => l.startsWith("{"))
          .map((l) => JSON.parse(l) as { level: string; msg: string });
      await sleep(300);
      assert.ok(levels().some((l) => l.level === "info"));
      assert.equal(levels().filter((l) => l.level === "debug").length, 0);
      child.kill("SIGUSR1");
      await sleep(300);
      const afterUsr1 = levels().length;
      assert.ok(levels().filter((l) => l.level === "debug").length > 2, "debug lines after SIGUSR1");
      child.kill("SIGUSR2");
      await sleep(100);
      const debugAtUsr2 = levels().filter((l) => l.level === "debug").length;
      await sleep(300);
      assert.ok(levels().length > afterUsr1, "info lines go on");
      assert.equal(levels().filter((l) => l.level === "debug").length, debugAtUsr2, "no debug after SIGUSR2");
    } finally {
      child.kill("SIGKILL");
    }
  });
});

describe("serveWhenBuilt", () => {
  it("accepts a Request before the role is built and answers it once it is", async () => {
    const server = new grpc.Server();
    let build: (register: (standIn: grpc.Server) => void) => void = () => {};
    const built = new Promise<(standIn: grpc.Server) => void>((resolve) => {
      build = resolve;
    });
    serveWhenBuilt(server, [NetworkService], built);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    const channel = dialChannel(`tcp://127.0.0.1:${port}`);
    try {
      const req = create(NetworkServiceRequestSchema, { connection: { id: "c1", networkService: "svc" } });
      const answered = grpcClient(NetworkService, channel).request(
        req,
        CallContext.create({ deadline: Date.now() + 10_000 }),
      );
      let done = false;
      void answered.then(() => (done = true)).catch(() => {});
      await sleep(300);
      assert.equal(done, false, "the Request waits while the role is being built");
      build((standIn) =>
        addService(standIn, NetworkService, {
          request: async (r) => create(ConnectionSchema, { id: r.connection?.id, networkServiceEndpointName: "built" }),
          close: async () => create(EmptySchema),
        }),
      );
      const conn = await answered;
      assert.equal(conn.id, "c1");
      assert.equal(conn.networkServiceEndpointName, "built", "answered by the handler registered once built");
    } finally {
      closeChannel(channel);
      server.forceShutdown();
    }
  });
});
