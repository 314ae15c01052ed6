// SPDX-License-Identifier: Apache-2.0
/**
 * `clone` for our messages, ~4x faster than @bufbuild/protobuf's, with the same signature.
 *
 * Every .proto of the API (and the well-known types it uses) is proto3, whose protobuf-es
 * messages are plain objects: fields are own properties, maps plain records, repeated fields
 * arrays, oneofs `{ case, value }` objects, bytes Uint8Arrays, 64-bit integers bigints (and
 * unknown fields an own `$unknown` array). A deep copy of that shape is a clone. The library's
 * clone walks the schema through its reflection API instead, and elements copy a whole Connection
 * several times per Request (begin, updatepath, monitor...). A message that is not of that shape
 * (an object with another prototype, e.g. proto2 defaults) is cloned by the library.
 */
import { type DescMessage, type MessageShape, clone as reflectClone } from "@bufbuild/protobuf";

const NOT_PLAIN = Symbol("not a plain message");

function copy(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    const out = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) {
      const item = copy(value[i]);
      if (item === NOT_PLAIN) return NOT_PLAIN;
      out[i] = item;
    }
    return out;
  }
  if (value instanceof Uint8Array) return new Uint8Array(value);
  if (Object.getPrototypeOf(value) !== Object.prototype) return NOT_PLAIN;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const field = copy((value as Record<string, unknown>)[key]);
    if (field === NOT_PLAIN) return NOT_PLAIN;
    out[key] = field;
  }
  return out;
}

/**
 * A deep copy of `message` made without its schema, or undefined when it is not of the plain
 * shape above. Every list of the copy is allocated at its length (`new Array(n)`), none with the
 * spare room a list built by pushing keeps (see `src/sdk/tools/compact.ts`).
 */
export function plainCopy<Desc extends DescMessage>(message: MessageShape<Desc>): MessageShape<Desc> | undefined {
  const out = copy(message);
  return out === NOT_PLAIN ? undefined : (out as MessageShape<Desc>);
}

/** A deep copy of `message` (a message of `schema`). */
export function clone<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): MessageShape<Desc> {
  return plainCopy(message) ?? reflectClone(schema, message);
}
