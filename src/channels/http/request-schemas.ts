import { z } from "zod";
import { DispatchError } from "../../utils/errors.js";

export const MAX_CHAT_ID_LENGTH = 256;
export const MAX_TEXT_LENGTH = 100_000;
export const MAX_MESSAGE_ID_LENGTH = 200;
export const MAX_SENDER_LENGTH = 256;
export const MAX_GROUP_NAME_LENGTH = 1_000;

const boundedString = (max: number) => z.string().min(1).max(max);

/** The body of `POST /v1/messages`. Unknown keys are refused, so a typo never goes unnoticed. */
export const postMessageSchema = z.strictObject({
  chat_id: boundedString(MAX_CHAT_ID_LENGTH),
  text: boundedString(MAX_TEXT_LENGTH),
  sender: boundedString(MAX_SENDER_LENGTH).optional(),
  group_name: boundedString(MAX_GROUP_NAME_LENGTH).optional(),
  message_id: boundedString(MAX_MESSAGE_ID_LENGTH).optional(),
  wait: z.boolean().optional(),
});

export type PostMessageBody = z.infer<typeof postMessageSchema>;

/** What each field expects, in words, for error messages. */
const EXPECTATIONS: Readonly<Record<string, string>> = {
  chat_id: `a string of 1 to ${MAX_CHAT_ID_LENGTH} characters`,
  text: `a string of 1 to ${MAX_TEXT_LENGTH} characters`,
  sender: `a string of 1 to ${MAX_SENDER_LENGTH} characters`,
  group_name: `a string of 1 to ${MAX_GROUP_NAME_LENGTH} characters`,
  message_id: `a string of 1 to ${MAX_MESSAGE_ID_LENGTH} characters`,
  wait: "true or false",
  forget: "true, false, 1 or 0",
};

const ALLOWED_MESSAGE_FIELDS = Object.keys(postMessageSchema.shape);

/**
 * Validates a parsed JSON body. Throws `DispatchError("bad_request")` whose message names every
 * field at fault and what it expects.
 */
export function parsePostMessage(body: unknown): PostMessageBody {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new DispatchError(
      "bad_request",
      `The request body must be a JSON object, got ${describeValue(body)}. ` +
        `Send for example {"chat_id": "+15551234567", "text": "hi"}.`,
    );
  }
  const result = postMessageSchema.safeParse(body, { reportInput: true });
  if (result.success) return result.data;
  const problems = result.error.issues.map(describeIssue);
  throw new DispatchError("bad_request", `Invalid request body: ${problems.join("; ")}.`);
}

/** `?forget=true|false|1|0`, absent meaning false. */
export function parseForget(value: string | undefined): boolean {
  if (value === undefined) return false;
  if (value === "true" || value === "1") return true;
  if (value === "false" || value === "0") return false;
  throw new DispatchError(
    "bad_request",
    `Query parameter \`forget\` must be ${EXPECTATIONS.forget}, got ${JSON.stringify(value)}.`,
  );
}

/** A chat id taken from the URL path, already percent-decoded. */
export function parsePathChatId(value: string): string {
  if (value.length === 0 || value.length > MAX_CHAT_ID_LENGTH) {
    throw new DispatchError(
      "invalid_chat_id",
      `The chat id in the path must be 1 to ${MAX_CHAT_ID_LENGTH} characters, got ${value.length}. ` +
        "Percent-encode it, e.g. /v1/sessions/%2B15551234567.",
    );
  }
  return value;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === "unrecognized_keys") {
    const unknown = issue.keys.map((key) => `\`${key}\``).join(", ");
    const allowed = ALLOWED_MESSAGE_FIELDS.map((key) => `\`${key}\``).join(", ");
    return `unknown field${issue.keys.length === 1 ? "" : "s"} ${unknown} (allowed: ${allowed})`;
  }
  const field = issue.path.map(String).join(".");
  const expectation = EXPECTATIONS[field];
  if (expectation === undefined) return `\`${field}\`: ${issue.message}`;
  if (issue.input === undefined) return `\`${field}\` is required: ${expectation}`;
  return `\`${field}\` must be ${expectation}, got ${describeValue(issue.input)}`;
}

function describeValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") {
    return value.length === 0 ? "an empty string" : `a string of ${value.length} characters`;
  }
  if (typeof value === "object") return "an object";
  return `${typeof value} ${JSON.stringify(value)}`;
}
