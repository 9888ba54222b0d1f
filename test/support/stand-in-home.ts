/**
 * The set-up of the end-to-end tests that drive a real session manager in the test's own
 * process: one stand-in model for the file, a fresh temporary HOME for each test, and what the
 * test opened closed after it, the last first, before that HOME is removed. Call it at the top
 * of a test file; it registers the hooks.
 */
import { afterAll, afterEach, beforeAll, beforeEach } from "vitest";
import { startStandInModel, type StandInModel } from "../../src/stand-in/model-server.js";
import { makeTempHome } from "./real-manager.js";

export interface StandInHome {
  /** The stand-in model, started before the file's first test. */
  readonly model: StandInModel;
  /** This test's temporary HOME. */
  readonly home: string;
  /** Run after each test, the last added first; the list is emptied. */
  readonly closers: (() => Promise<void>)[];
}

export function useStandInHome(): StandInHome {
  let model: StandInModel | undefined;
  let home: { home: string; remove(): Promise<void> } | undefined;
  const closers: (() => Promise<void>)[] = [];
  beforeAll(async () => {
    model = await startStandInModel();
  });
  afterAll(async () => {
    await model?.close();
  });
  beforeEach(async () => {
    home = await makeTempHome();
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
    await home?.remove();
    home = undefined;
  });
  return {
    get model() {
      if (model === undefined) throw new Error("The stand-in model runs only during the tests");
      return model;
    },
    get home() {
      if (home === undefined) throw new Error("The temporary HOME exists only during a test");
      return home.home;
    },
    closers,
  };
}
