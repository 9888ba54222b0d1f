// @ts-check
/// <reference lib="dom" />
/* global clearTimeout, history, HTMLElement, HTMLFormElement, HTMLInputElement, HTMLButtonElement, HTMLDialogElement, setTimeout, location, document, window */
/**
 * The dashboard page: sign-in (with the token, or once with a link from `dispatch dashboard`), the views (Sessions, Session, Contacts, Health, Log) behind hash
 * routes (`#/sessions`, `#/session/<chat id>`, `#/contacts`, `#/health`, `#/log`), and the live
 * session list every view reads.
 */
import { ApiError, clearToken, getToken, openEventStream, request, setToken } from "./api.js";
import { byId, setText } from "./dom.js";
import { createContactsView } from "./contacts-view.js";
import { createHealthView } from "./health-view.js";
import { createLogView } from "./log-view.js";
import { createSessionView } from "./session-view.js";
import { createSessionsView } from "./sessions-view.js";

/**
 * @typedef {{
 *   chat_id: string, session_name: string, contact_name: string | null, tier: string,
 *   session_id: string | null, state: string, created_at: string,
 *   last_message_time: string | null, chat_kind: string, channel: string | null,
 *   turns: number, errors: number, restarts: number, unanswered: number, pid: number | null,
 *   total_cost_usd: number | null, memory_bytes: number | null,
 *   cost_so_far_usd: number | null, cost_unknown_turns: number,
 *   previous_session_ids: { session_id: string, replaced_at: string, reason: string }[],
 *   node: string | null,
 * }} Session
 *
 * @typedef {{ element: HTMLElement, update(sessions: Session[]): void, destroy(): void }} View
 *
 * @typedef {{
 *   sessions(): Session[],
 *   loaded(): boolean,
 *   demo(): boolean,
 *   registryFields(): string[] | undefined,
 *   announce(text: string): void,
 *   notify(text: string): void,
 *   alert(text: string): void,
 *   confirm(options: { title: string, text: string, action: string }): Promise<boolean>,
 *   signOut(message?: string): void,
 * }} Context
 */

const loginSection = byId("login", HTMLElement);
const loginForm = byId("login-form", HTMLFormElement);
const tokenInput = byId("token", HTMLInputElement);
const loginError = byId("login-error", HTMLElement);
const nav = byId("nav", HTMLElement);
const connection = byId("connection", HTMLElement);
const signOutButton = byId("sign-out", HTMLButtonElement);
const viewRoot = byId("view", HTMLElement);
const announcer = byId("announcer", HTMLElement);
const alertRegion = byId("alert", HTMLElement);
const notice = byId("notice", HTMLElement);
/** @type {ReturnType<typeof setTimeout> | undefined} */
let noticeTimer;
const confirmDialog = byId("confirm", HTMLDialogElement);
const demoBanner = byId("demo-banner", HTMLElement);

/** @type {Session[]} */
let sessions = [];
/** Whether `sessions` came from the daemon yet (an empty list means none, not "not yet"). */
let loaded = false;
/** @type {View | undefined} */
let view;
/** @type {{ close(): void } | undefined} */
let stream;
/** What the daemon said about itself when the page signed in. */
/** @type {{ version: string, demo: boolean, registry_fields: string[] } | undefined} */
let about;

/** @type {Context} */
const context = {
  sessions: () => sessions,
  loaded: () => loaded,
  demo: () => about?.demo === true,
  registryFields: () => about?.registry_fields,
  announce(text) {
    // Cleared first, so the same words said twice are announced twice.
    announcer.textContent = "";
    setTimeout(() => (announcer.textContent = text), 50);
  },
  notify(text) {
    // Shown over the page (it takes no room, so nothing moves) and read out, for a few seconds.
    clearTimeout(noticeTimer);
    notice.textContent = text;
    notice.classList.add("shown");
    noticeTimer = setTimeout(() => {
      notice.classList.remove("shown");
      notice.textContent = "";
    }, 8_000);
  },
  alert(text) {
    alertRegion.textContent = "";
    setTimeout(() => (alertRegion.textContent = text), 50);
  },
  confirm({ title, text, action }) {
    setText(byId("confirm-title", HTMLElement), title);
    setText(byId("confirm-text", HTMLElement), text);
    setText(byId("confirm-button", HTMLButtonElement), action);
    confirmDialog.returnValue = "";
    confirmDialog.showModal();
    return new Promise((resolve) => {
      confirmDialog.addEventListener(
        "close",
        () => resolve(confirmDialog.returnValue === "confirm"),
        { once: true },
      );
    });
  },
  signOut,
};

function signOut(message = "") {
  clearToken();
  stream?.close();
  stream = undefined;
  view?.destroy();
  view = undefined;
  viewRoot.textContent = "";
  sessions = [];
  loaded = false;
  about = undefined;
  demoBanner.hidden = true;
  nav.hidden = true;
  connection.hidden = true;
  signOutButton.hidden = true;
  loginSection.hidden = false;
  loginError.textContent = message;
  tokenInput.value = "";
  tokenInput.focus();
}

/**
 * Shows the views once the daemon has said what it is (demo mode marks every cost).
 * @param {boolean} moveFocus whether focus goes to the view (after signing in, not on reload)
 */
async function signedIn(moveFocus) {
  loginSection.hidden = true;
  loginError.textContent = "";
  nav.hidden = false;
  connection.hidden = false;
  signOutButton.hidden = false;
  try {
    about = await request("GET", "/v1/dashboard/about");
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      signOut("The token is no longer accepted; sign in again.");
      return;
    }
    // Not fatal: the views work without it; the stream below says whether the daemon is there.
    about = undefined;
  }
  if (!getToken()) return; // signed out meanwhile
  demoBanner.hidden = !context.demo();
  stream = openEventStream({
    onSessions(list) {
      sessions = list;
      loaded = true;
      view?.update(sessions);
    },
    onState(state) {
      const labels = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…" };
      setText(connection, labels[state]);
      connection.dataset.state = state;
    },
    onUnauthorized: () => signOut("The token is no longer accepted; sign in again."),
  });
  route(moveFocus);
}

/** Shows the view the location's hash names. */
function route(moveFocus = true) {
  if (!getToken()) return;
  const hash = location.hash || "#/sessions";
  view?.destroy();
  const sessionMatch = /^#\/session\/(.+)$/.exec(hash);
  if (sessionMatch?.[1]) {
    view = createSessionView(context, decodeURIComponent(sessionMatch[1]));
  } else if (hash === "#/health") {
    view = createHealthView(context);
  } else if (hash === "#/contacts") {
    view = createContactsView(context);
  } else if (hash === "#/log") {
    view = createLogView(context);
  } else {
    view = createSessionsView(context);
  }
  viewRoot.replaceChildren(view.element);
  const active =
    ["#/health", "#/contacts", "#/log"].find((name) => name === hash)?.slice(2) ?? "sessions";
  for (const link of nav.querySelectorAll("a")) {
    if (link.dataset.view === active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  view.update(sessions);
  const heading = view.element.querySelector("h1");
  if (heading) {
    heading.tabIndex = -1;
    document.title = `${heading.textContent ?? ""} · dispatch`;
    if (moveFocus) heading.focus();
  }
}

loginForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const token = tokenInput.value.trim();
  if (token === "") {
    loginError.textContent = "Enter the API token.";
    tokenInput.focus();
    return;
  }
  loginError.textContent = "";
  request("GET", "/v1/dashboard/sessions", undefined, token).then(
    (list) => {
      setToken(token);
      tokenInput.value = "";
      sessions = list;
      loaded = true;
      void signedIn(true);
    },
    (error) => {
      loginError.textContent =
        error instanceof ApiError && error.status === 401
          ? "That token is not accepted. Copy it again from ~/dispatch/state/api-token."
          : error instanceof Error
            ? error.message
            : String(error);
      tokenInput.focus();
    },
  );
});

signOutButton.addEventListener("click", () => signOut());
window.addEventListener("hashchange", () => route());

/**
 * A link from `dispatch dashboard` (`/#code=...`): the fragment is dropped from the address and
 * the history at once (so the code is not bookmarked, shared or reused), then the code is traded
 * for the token, once.
 * @param {string} code
 */
function signInWithCode(code) {
  history.replaceState(null, "", `${location.pathname}${location.search}`);
  request("POST", "/v1/dashboard/sign-in", { code }, null).then(
    (/** @type {{ token: string }} */ answer) => {
      setToken(answer.token);
      void signedIn(true);
    },
    (error) => {
      const message = error instanceof Error ? error.message : String(error);
      // A spent link opened in a tab that is signed in already leaves it signed in.
      if (!getToken()) return signOut(message);
      void signedIn(false);
      context.notify(message);
    },
  );
}

const linkCode = /^#code=([A-Za-z0-9_-]+)$/.exec(location.hash)?.[1];
if (linkCode !== undefined) signInWithCode(linkCode);
else if (getToken()) void signedIn(false);
else signOut();
