/**
 * The stand-in model for a scenario, with the one question the benchmark asks it: when did the
 * request carrying a given marker arrive? Recorded requests hold whole conversation bodies, so
 * long scenarios `forget()` them as they go.
 */
import { startStandInModel, type StandInModel } from "../../src/stand-in/model-server.js";

/** A conversation request as the benchmark looks at it. */
export interface SeenRequest {
  /** Date.now() when it arrived. */
  at: number;
  /** Its body's size in bytes: everything the model is sent for the turn. */
  bytes: number;
  /** Its newest user text, as the model reads it. */
  newestUserText: string;
}

export interface BenchModel {
  url: string;
  /** Date.now() at which the first conversation request whose newest user text has `marker` arrived. */
  arrivalOf(marker: string): number | undefined;
  /** The first conversation request whose newest user text has `marker`. */
  requestOf(marker: string): SeenRequest | undefined;
  /** Conversation requests recorded so far (title requests excluded). */
  mainRequests(): number;
  /** Drops the recorded requests. */
  forget(): void;
  close(): Promise<void>;
}

export async function startBenchModel(): Promise<BenchModel> {
  const model: StandInModel = await startStandInModel();
  let forgottenMain = 0;
  const requestOf = (marker: string): SeenRequest | undefined => {
    const request = model.requests.find(
      (candidate) => candidate.kind === "main" && candidate.userTexts.at(-1)?.includes(marker),
    );
    return request
      ? { at: request.at, bytes: request.bytes, newestUserText: request.userTexts.at(-1)! }
      : undefined;
  };
  return {
    url: model.url,
    arrivalOf: (marker) => requestOf(marker)?.at,
    requestOf,
    mainRequests: () => forgottenMain + model.mainRequests().length,
    forget() {
      forgottenMain += model.mainRequests().length;
      model.requests.splice(0);
    },
    close: () => model.close(),
  };
}
