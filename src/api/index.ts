// SPDX-License-Identifier: Apache-2.0
/**
 * The NSM wire API: generated messages and services, plus thin helpers (mechanism constants,
 * path accessors). No behaviour lives here.
 */

export { create, equals, fromBinary, toBinary } from "@bufbuild/protobuf";
export { clone } from "./clone.js";
export * from "./gen/connection_pb.js";
export * from "./gen/connectioncontext_pb.js";
export * as ipam from "./gen/ipam_pb.js";
export * from "./gen/networkservice_pb.js";
export * as registry from "./gen/registry_pb.js";
export * from "./mechanisms.js";
export * from "./path.js";
