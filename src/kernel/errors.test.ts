// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { openSync } from "node:fs";
import { constants } from "node:os";
import { describe, it } from "node:test";
import { Code, NsmError } from "../sdk/core/errors.js";
import { codeFromErrno, errnoName, nsmErrorFromErrno, nsmErrorFromSystem } from "./errors.js";

const E = constants.errno;

describe("errno mapping", () => {
  it("maps each errno to its gRPC code, whatever the sign", () => {
    const table: Array<[number, Code]> = [
      [E.EEXIST, Code.AlreadyExists],
      [E.ENOENT, Code.NotFound],
      [E.ENODEV, Code.NotFound],
      [E.ESRCH, Code.NotFound],
      [E.EPERM, Code.PermissionDenied],
      [E.EACCES, Code.PermissionDenied],
      [E.EBUSY, Code.Unavailable],
      [E.EAGAIN, Code.Unavailable],
      [E.EINVAL, Code.InvalidArgument],
      [E.ERANGE, Code.InvalidArgument],
      [E.ENETUNREACH, Code.Internal],
      [E.EOPNOTSUPP, Code.Internal],
      [9999, Code.Internal],
    ];
    for (const [errno, code] of table) {
      assert.equal(codeFromErrno(errno), code, errnoName(errno));
      assert.equal(codeFromErrno(-errno), code, `-${errnoName(errno)}`);
    }
  });

  it("keeps the operation, errno name and number, and extack text in the message", () => {
    const e = nsmErrorFromErrno(-17, 'create veth "a" in netns /x', "File exists");
    assert.ok(e instanceof NsmError);
    assert.equal(e.code, Code.AlreadyExists);
    assert.equal(e.rawMessage, 'create veth "a" in netns /x: EEXIST (errno 17): File exists');
    assert.equal(e.reason, "EEXIST");
    assert.deepEqual(e.details, { errno: 17, extack: "File exists" });
    assert.equal(nsmErrorFromErrno(9999, "x").rawMessage, "x: errno 9999 (errno 9999)");
  });

  it("maps errors from node:fs and the addon by their errno", () => {
    let fsErr: unknown;
    try {
      openSync("/nonexistent/nsm-kernel-test", "r");
    } catch (err) {
      fsErr = err;
    }
    const e = nsmErrorFromSystem(fsErr, "open netns /nonexistent");
    assert.equal(e.code, Code.NotFound);
    assert.match(e.rawMessage, /^open netns \/nonexistent \(open\): ENOENT \(errno 2\)/);
    const addon = Object.assign(new Error("setns: Operation not permitted"), { errno: 1, syscall: "setns" });
    assert.equal(nsmErrorFromSystem(addon, "open socket").code, Code.PermissionDenied);
    assert.equal(nsmErrorFromSystem(new Error("boom"), "x").code, Code.Internal);
    const passthrough = new NsmError("kept", Code.NotFound);
    assert.equal(nsmErrorFromSystem(passthrough, "x"), passthrough);
  });
});
