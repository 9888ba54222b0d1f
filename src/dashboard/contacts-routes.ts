/**
 * The Contacts view's API, mounted by `dashboard-routes.ts` under `/v1/dashboard/contacts`
 * behind its bearer token and error handling:
 * `GET /` the contacts and which have sessions; `POST /` adds a contact; `PUT /:index` replaces
 * one; `DELETE /:index` removes one. Changes carry the `version` the page read (`{"version",
 * "contact": {"name", "tier", "handles": [...]}}`) and answer the new list.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { DispatchError } from "../utils/errors.js";
import type { DashboardContacts } from "./dashboard-contacts.js";

const MAX_BODY_BYTES = 64 * 1024;
const MAX_HANDLES = 100;

const contactSchema = z.strictObject({
  name: z.string().max(200),
  tier: z.string().max(100),
  handles: z.array(z.string().max(1_000)).max(MAX_HANDLES),
});
const versionSchema = z.string().max(100).nullable();
const changeSchema = z.strictObject({ version: versionSchema, contact: contactSchema });
const removeSchema = z.strictObject({ version: versionSchema });

const CHANGE_SHAPE =
  'Send a JSON object {"version": <the version the list gave, or null>, "contact": {"name": "...", ' +
  `"tier": "...", "handles": ["+15551234567", ...]}} with at most ${MAX_HANDLES} handles.`;

export function createContactsRoutes(contacts: DashboardContacts): Hono {
  const app = new Hono();
  const limit = bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: () => {
      throw new DispatchError("payload_too_large", `${CHANGE_SHAPE} This one is too large.`);
    },
  });
  const body = async <T>(request: Request, schema: z.ZodType<T>, shape: string): Promise<T> => {
    const parsed = schema.safeParse(await request.json().catch(() => undefined));
    if (!parsed.success) throw new DispatchError("bad_request", shape);
    return parsed.data;
  };
  const indexOf = (param: string): number => {
    if (!/^\d{1,6}$/.test(param)) {
      throw new DispatchError(
        "not_found",
        `There is no contact ${JSON.stringify(param)}: contacts are numbered from 0, as the list gives them.`,
      );
    }
    return Number(param);
  };

  app.get("/", async (c) => c.json(await contacts.list()));

  app.post("/", limit, async (c) => {
    const change = await body(c.req.raw, changeSchema, CHANGE_SHAPE);
    return c.json(await contacts.add(change.contact, change.version), 201);
  });

  app.put("/:index", limit, async (c) => {
    const index = indexOf(c.req.param("index"));
    const change = await body(c.req.raw, changeSchema, CHANGE_SHAPE);
    return c.json(await contacts.update(index, change.contact, change.version));
  });

  app.delete("/:index", limit, async (c) => {
    const index = indexOf(c.req.param("index"));
    const change = await body(
      c.req.raw,
      removeSchema,
      'Send a JSON object {"version": <the version the list gave, or null>}.',
    );
    return c.json(await contacts.remove(index, change.version));
  });

  return app;
}
