// SPDX-License-Identifier: Apache-2.0
/**
 * Deep copies of protobuf messages that a hop keeps for a connection's whole life, with every
 * repeated field in an array of its exact size.
 *
 * A list built one element at a time (by protobuf-es's `clone` and by decoding) reserves room
 * for about 17 elements on its first push: a Connection's path, addresses and routes (mostly one
 * to four elements) then take about 600 bytes more than they hold, for each copy kept (begin's,
 * the monitor's), at 1000 connections a few MiB per process.
 * The API's own copy (`plainCopy` of `src/api/clone.ts`) allocates every list at its length, so
 * it is used as it is; only a message it cannot copy goes through protobuf-es's `clone` and then
 * has its lists trimmed here (written by hand: protobuf-es has no compacting copy; this walks
 * the schema's fields).
 */
import { clone, type DescField, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { plainCopy } from "../../api/clone.js";

/** A deep copy of `message` whose lists (here and in nested messages) are exactly as long as they hold. */
export function compactClone<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): MessageShape<Desc> {
  const plain = plainCopy<Desc>(message);
  if (plain) return plain;
  const copy = clone(schema, message);
  trimLists(schema, copy as Record<string, unknown>);
  return copy;
}

function trimLists(schema: DescMessage, message: Record<string, unknown>): void {
  for (const field of schema.fields) {
    if (!field.oneof) trimField(field, message);
  }
}

function trimField(field: DescField, message: Record<string, unknown>): void {
  const value = message[field.localName];
  if (value === undefined || value === null) return;
  if (field.fieldKind === "list") {
    const exact = (value as unknown[]).slice();
    if (field.listKind === "message") for (const m of exact) trimLists(field.message, m as Record<string, unknown>);
    message[field.localName] = exact;
  } else if (field.fieldKind === "message") {
    trimLists(field.message, value as Record<string, unknown>);
  } else if (field.fieldKind === "map" && field.mapKind === "message") {
    for (const m of Object.values(value as object)) trimLists(field.message, m as Record<string, unknown>);
  }
}
