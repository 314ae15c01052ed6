// SPDX-License-Identifier: Apache-2.0
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ipam, MonitorConnection, NetworkService, registry } from "../../api/index.js";
import { grpcDefinition } from "./service.js";

describe("grpcDefinition", () => {
  it("uses the upstream method paths", () => {
    const paths = (svc: Parameters<typeof grpcDefinition>[0]) => Object.values(grpcDefinition(svc)).map((m) => m.path);
    assert.deepEqual(paths(NetworkService), [
      "/networkservice.NetworkService/Request",
      "/networkservice.NetworkService/Close",
    ]);
    assert.deepEqual(paths(MonitorConnection), ["/connection.MonitorConnection/MonitorConnections"]);
    assert.deepEqual(paths(registry.NetworkServiceRegistry), [
      "/registry.NetworkServiceRegistry/Register",
      "/registry.NetworkServiceRegistry/Find",
      "/registry.NetworkServiceRegistry/Unregister",
    ]);
    assert.deepEqual(paths(registry.NetworkServiceEndpointRegistry), [
      "/registry.NetworkServiceEndpointRegistry/Register",
      "/registry.NetworkServiceEndpointRegistry/Find",
      "/registry.NetworkServiceEndpointRegistry/Unregister",
    ]);
    assert.deepEqual(paths(ipam.IPAM), ["/ipam.IPAM/ManagePrefixes"]);
    assert.equal(grpcDefinition(MonitorConnection).monitorConnections?.responseStream, true);
    assert.equal(grpcDefinition(ipam.IPAM).managePrefixes?.requestStream, true);
  });
});
