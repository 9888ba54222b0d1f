/**
 * Reads a Server-Sent Events response (`GET /v1/events`) event by event, as a client would:
 * `next()` resolves with the next event (comments skipped, but counted), `close()` drops the
 * connection.
 */
export interface StreamEvent {
  event: string;
  id: string | undefined;
  data: string;
}

export interface EventStreamReader {
  status: number;
  next(): Promise<StreamEvent>;
  /** Comment lines (`: ...`) seen so far: the heartbeats. */
  comments(): number;
  close(): void;
}

export async function openEventStream(
  url: string,
  headers: Record<string, string>,
): Promise<EventStreamReader> {
  const controller = new AbortController();
  const response = await fetch(url, { headers, signal: controller.signal });
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let comments = 0;
  const ready: StreamEvent[] = [];
  const next = async (): Promise<StreamEvent> => {
    for (;;) {
      if (ready.length > 0) return ready.shift()!;
      const { value, done } = await reader.read();
      if (done) throw new Error("the event stream ended");
      buffer += value;
      const blocks = buffer.split("\n\n");
      buffer = blocks.pop() ?? "";
      for (const block of blocks) {
        let event = "message";
        let id: string | undefined;
        const data: string[] = [];
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) {
            comments += 1;
            continue;
          }
          const colon = line.indexOf(":");
          const field = colon === -1 ? line : line.slice(0, colon);
          const text = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
          if (field === "event") event = text;
          else if (field === "id") id = text;
          else if (field === "data") data.push(text);
        }
        if (data.length > 0) ready.push({ event, id, data: data.join("\n") });
      }
    }
  };
  return {
    status: response.status,
    next,
    comments: () => comments,
    close: () => controller.abort(),
  };
}
