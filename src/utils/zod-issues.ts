/**
 * Where a zod issue points, for the messages that describe it: its key path as a person reads
 * it, the value found there, and the keys an object schema allows there. `config/problems.ts`
 * (config.json) and `identity/contacts-file.ts` (contacts.json) each word their messages their
 * own way on top of these. Pure.
 */
import { z } from "zod";

/** `["channels", "imessage", "sendCommand", 0]` -> `channels.imessage.sendCommand[0]` */
export function formatKeyPath(path: readonly PropertyKey[]): string {
  let text = "";
  for (const segment of path) {
    if (typeof segment === "number") text += `[${segment}]`;
    else text += text === "" ? String(segment) : `.${String(segment)}`;
  }
  return text;
}

/** The value at `path` in the input the schema was given; undefined where there is none. */
export function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let current = input;
  for (const segment of path) {
    if (typeof current !== "object" || current === null) return undefined;
    current = (current as Record<PropertyKey, unknown>)[segment];
  }
  return current;
}

/** The keys an object schema allows at `path`, through optional, default and pipe wrappers. */
export function knownKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let current: unknown = schema;
  const unwrap = (): void => {
    for (;;) {
      if (current instanceof z.ZodPipe) current = current.in;
      else if (
        current instanceof z.ZodOptional ||
        current instanceof z.ZodDefault ||
        current instanceof z.ZodPrefault
      )
        current = current.unwrap();
      else return;
    }
  };
  for (const segment of path) {
    unwrap();
    if (current instanceof z.ZodObject) current = current.shape[String(segment)];
    else if (current instanceof z.ZodRecord) current = current.valueType;
    else if (current instanceof z.ZodArray) current = current.element;
    else return [];
  }
  unwrap();
  return current instanceof z.ZodObject ? Object.keys(current.shape) : [];
}
