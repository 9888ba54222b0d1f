// @ts-check
/// <reference lib="dom" />
/**
 * The Contacts view: every contact and group of contacts.json with its tier and handles, which
 * handles have sessions, and the chats no one claims; a form to add or edit a contact, checked by
 * the daemon exactly as it checks the file at start, saved whole and used from the next message.
 */
import { ApiError, request } from "./api.js";
import { h, replaceChildren, setText } from "./dom.js";
import { plural } from "./format.js";
import { createReloadThrottle } from "./reload-throttle.js";

/**
 * @typedef {import("./app.js").Context} Context
 * @typedef {{ chat_id: string, session_name: string, contact_name: string | null, tier: string,
 *   state: string }} ContactSession
 * @typedef {{ raw: string, chat_id: string | null, problem: string | null,
 *   session: ContactSession | null }} Handle
 * @typedef {{ index: number, name: string, tier: string, handles: Handle[] }} Contact
 * @typedef {{
 *   file: string, version: string | null, problems: string[], editable: boolean,
 *   tiers: { name: string, answered: boolean }[],
 *   contacts: Contact[],
 *   groups: { index: number, name: string, tier: string, handle: Handle }[],
 *   unlisted: ContactSession[],
 * }} Contacts
 * @typedef {{ name: string, tier: string, handles: string[] }} ContactInput
 */

const CONTACTS_PATH = "/v1/dashboard/contacts";

/**
 * @param {Context} context
 * @returns {import("./app.js").View}
 */
export function createContactsView(context) {
  /** @type {Contacts | undefined} */
  let contacts;
  /**
   * What the form is doing, and the version of the list it was opened on: a change is made to
   * that version, so one made meanwhile (by hand, from another tab) is never overwritten.
   * @type {{ index: number | null, version: string | null } | undefined}
   */
  let editing;
  let destroyed = false;
  // Sessions changed (a new chat, a state): load again, at most every two seconds.
  const reload = createReloadThrottle(() => void load(), 2_000);

  const heading = h("h1", { id: "contacts-title" }, "Contacts");
  const count = h("p", { class: "count", role: "status" }, "Loading…");
  const where = h("p", { class: "muted intro" });
  const problems = h("div", { class: "problems", hidden: true });
  const addButton = h(
    "button",
    { type: "button", onclick: () => openForm(null, { name: "", tier: "", handles: [] }) },
    "Add a contact",
  );

  const nameInput = h("input", {
    id: "contact-name",
    name: "name",
    autocomplete: "off",
    required: true,
    maxlength: 200,
  });
  const tierSelect = h("select", { id: "contact-tier", name: "tier" });
  const handlesInput = h("textarea", {
    id: "contact-handles",
    name: "handles",
    rows: 3,
    spellcheck: "false",
    "aria-describedby": "contact-handles-help",
  });
  const formError = h("p", { class: "form-error", role: "alert" });
  const saveButton = h("button", { type: "submit" }, "Save");
  const formTitle = h("h2", { id: "contact-form-title", tabindex: -1 }, "Add a contact");
  const form = h(
    "form",
    { class: "contact-form", method: "post", novalidate: true },
    h("div", { class: "form-field" }, h("label", { for: "contact-name" }, "Name"), nameInput),
    h("div", { class: "form-field" }, h("label", { for: "contact-tier" }, "Tier"), tierSelect),
    h(
      "div",
      { class: "form-field" },
      h("label", { for: "contact-handles" }, "Phone numbers and email addresses"),
      h(
        "p",
        { id: "contact-handles-help", class: "muted" },
        "One per line: a number with its country code (+1 555 123 4567) or an email address.",
      ),
      handlesInput,
    ),
    formError,
    h(
      "div",
      { class: "buttons" },
      saveButton,
      h("button", { type: "button", class: "quiet", onclick: () => closeForm() }, "Cancel"),
    ),
  );
  const formSection = h(
    "section",
    { class: "panel form-panel", "aria-labelledby": "contact-form-title", hidden: true },
    formTitle,
    form,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void save();
  });
  form.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeForm();
  });

  const list = h("ul", { class: "cards contact-list", "aria-labelledby": "contacts-title" });
  const groupsSection = h(
    "section",
    { class: "contact-section", "aria-labelledby": "groups-title", hidden: true },
    h("h2", { id: "groups-title" }, "Groups"),
  );
  const groupList = h("ul", { class: "cards" });
  groupsSection.append(groupList);
  const unlistedSection = h(
    "section",
    { class: "contact-section", "aria-labelledby": "unlisted-title", hidden: true },
    h("h2", { id: "unlisted-title" }, "Chats not in contacts"),
    h(
      "p",
      { class: "muted" },
      "Chats dispatch has a session for that no contact or group claims: they get the unknown tier.",
    ),
  );
  const unlistedList = h("ul", { class: "cards" });
  unlistedSection.append(unlistedList);

  const element = h(
    "section",
    { class: "view contacts", "aria-labelledby": "contacts-title" },
    h("div", { class: "view-head" }, heading, count),
    where,
    problems,
    h("div", { class: "toolbar" }, addButton),
    formSection,
    list,
    groupsSection,
    unlistedSection,
  );

  async function load() {
    reload.loadStarted();
    try {
      /** @type {Contacts} */
      const loaded = await request("GET", CONTACTS_PATH);
      if (!destroyed) render(loaded);
    } catch (error) {
      if (destroyed) return;
      if (error instanceof ApiError && error.status === 401) {
        context.signOut("The token is no longer accepted; sign in again.");
        return;
      }
      setText(count, `Could not load: ${message(error)}`);
    }
  }

  /** @param {Contacts} next */
  function render(next) {
    contacts = next;
    const groupCount = next.groups.length;
    setText(
      count,
      `${plural(next.contacts.length, "contact")}${groupCount > 0 ? `, ${plural(groupCount, "group")}` : ""}`,
    );
    replaceChildren(
      where,
      "Kept in ",
      h("code", {}, next.file),
      next.version === null ? " (not written yet)" : "",
      ". A change is checked as dispatch checks the file at start, saved whole, and used from the next message on.",
    );
    problems.hidden = next.problems.length === 0;
    replaceChildren(
      problems,
      h(
        "p",
        {},
        h("strong", {}, "contacts.json has problems. "),
        next.editable
          ? "dispatch keeps using the contacts it loaded last. Fix them here or in the file:"
          : "It cannot be changed from here until it is fixed by hand:",
      ),
      next.problems.map((problem) => h("p", { class: "problem-text" }, problem)),
    );
    addButton.disabled = !next.editable;
    fillTiers();

    replaceChildren(
      list,
      next.contacts.length === 0
        ? h(
            "li",
            { class: "empty" },
            "No contacts yet. Add one: dispatch answers a contact with its tier's model and tools.",
          )
        : next.contacts.map((contact) => contactCard(contact, next.editable)),
    );
    groupsSection.hidden = next.groups.length === 0;
    replaceChildren(
      groupList,
      next.groups.map((group) =>
        h(
          "li",
          { class: "card" },
          h("h3", { class: "card-title" }, group.name),
          h("p", { class: "card-sub" }, "Tier ", h("strong", {}, group.tier)),
          h("ul", { class: "handles" }, handleItem(group.handle, group.tier)),
        ),
      ),
    );
    unlistedSection.hidden = next.unlisted.length === 0;
    replaceChildren(
      unlistedList,
      next.unlisted.map((session) =>
        h(
          "li",
          { class: "card" },
          h(
            "h3",
            { class: "card-title" },
            h("a", { href: `#/session/${encodeURIComponent(session.chat_id)}` }, session.chat_id),
          ),
          h(
            "p",
            { class: "card-sub" },
            `Session ${session.session_name}, tier ${session.tier}, `,
            h("span", { class: "state", "data-state": session.state }, session.state),
          ),
          session.chat_id.includes("@") || session.chat_id.startsWith("+")
            ? h(
                "div",
                { class: "buttons" },
                h(
                  "button",
                  {
                    type: "button",
                    class: "small",
                    disabled: !next.editable,
                    onclick: () =>
                      openForm(null, {
                        name: session.contact_name ?? "",
                        tier: "",
                        handles: [session.chat_id],
                      }),
                  },
                  "Add as a contact",
                  h("span", { class: "visually-hidden" }, ` ${session.chat_id}`),
                ),
              )
            : null,
        ),
      ),
    );
  }

  /**
   * @param {Contact} contact
   * @param {boolean} editable
   */
  function contactCard(contact, editable) {
    const stale = contact.handles.filter(
      (handle) => handle.session !== null && handle.session.tier !== contact.tier,
    );
    return h(
      "li",
      { class: "card", "data-index": contact.index },
      h("h3", { class: "card-title" }, contact.name),
      h("p", { class: "card-sub" }, "Tier ", h("strong", {}, contact.tier)),
      h(
        "ul",
        { class: "handles", "aria-label": `Handles of ${contact.name}` },
        contact.handles.map((handle) => handleItem(handle, contact.tier)),
      ),
      stale.length > 0
        ? h(
            "p",
            { class: "note" },
            `${stale.length === 1 ? "Its session was" : "Sessions marked “has tier” were"} started with another tier: tier ${contact.tier} applies when a message next starts ${stale.length === 1 ? "it (stop it first if it is running)" : "them (stop them first if running)"}.`,
          )
        : null,
      h(
        "div",
        { class: "buttons" },
        h(
          "button",
          {
            type: "button",
            class: "small",
            disabled: !editable,
            onclick: () =>
              openForm(contact.index, {
                name: contact.name,
                tier: contact.tier,
                handles: contact.handles.map((handle) => handle.raw),
              }),
          },
          "Edit",
          h("span", { class: "visually-hidden" }, ` ${contact.name}`),
        ),
        h(
          "button",
          {
            type: "button",
            class: "small danger-outline",
            disabled: !editable,
            onclick: () => void remove(contact),
          },
          "Remove",
          h("span", { class: "visually-hidden" }, ` ${contact.name}`),
        ),
      ),
    );
  }

  /**
   * @param {Handle} handle
   * @param {string} tier the tier its contact or group has in the file
   */
  function handleItem(handle, tier) {
    const session = handle.session;
    return h(
      "li",
      { class: handle.problem ? "handle invalid" : "handle" },
      h("span", { class: "handle-raw" }, handle.raw),
      handle.chat_id !== null && handle.chat_id !== handle.raw
        ? h("span", { class: "muted" }, ` → ${handle.chat_id}`)
        : null,
      handle.problem ? h("span", { class: "handle-problem" }, ` ${handle.problem}`) : null,
      session
        ? h(
            "span",
            { class: "handle-session" },
            " · ",
            h(
              "a",
              { href: `#/session/${encodeURIComponent(session.chat_id)}` },
              `session ${session.session_name}`,
            ),
            " ",
            h("span", { class: "state", "data-state": session.state }, session.state),
            session.tier !== tier ? ` (has tier ${session.tier})` : "",
          )
        : h("span", { class: "muted" }, handle.chat_id === null ? "" : " · no session yet"),
    );
  }

  function fillTiers() {
    if (!contacts) return;
    const chosen = tierSelect.value;
    replaceChildren(
      tierSelect,
      contacts.tiers.map((tier) =>
        h(
          "option",
          { value: tier.name },
          tier.answered ? tier.name : `${tier.name} (not answered)`,
        ),
      ),
    );
    if (chosen) tierSelect.value = chosen;
  }

  /**
   * @param {number | null} index the contact edited; null to add one
   * @param {ContactInput} values
   */
  function openForm(index, values) {
    if (!contacts) return;
    editing = { index, version: contacts.version };
    const named = values.name.trim() === "" ? null : values.name;
    setText(formTitle, index === null ? "Add a contact" : `Edit ${named ?? "contact"}`);
    nameInput.value = values.name;
    fillTiers();
    const tiers = contacts.tiers.map((tier) => tier.name);
    tierSelect.value = tiers.includes(values.tier)
      ? values.tier
      : tiers.includes("favorite")
        ? "favorite"
        : (tiers[0] ?? "");
    handlesInput.value = values.handles.join("\n");
    setText(formError, "");
    formSection.hidden = false;
    formSection.scrollIntoView({ block: "nearest" });
    (named === null ? nameInput : handlesInput).focus();
  }

  function closeForm() {
    editing = undefined;
    formSection.hidden = true;
    setText(formError, "");
    addButton.focus();
  }

  async function save() {
    if (!editing || !contacts) return;
    /** @type {ContactInput} */
    const contact = {
      name: nameInput.value,
      tier: tierSelect.value,
      handles: handlesInput.value.split(/[\n,]/),
    };
    const { index, version } = editing;
    saveButton.disabled = true;
    setText(formError, "");
    try {
      /** @type {Contacts} */
      const next =
        index === null
          ? await request("POST", CONTACTS_PATH, { version, contact })
          : await request("PUT", `${CONTACTS_PATH}/${index}`, { version, contact });
      if (destroyed) return;
      render(next);
      const name = contact.name.trim();
      closeForm();
      context.notify(`Saved ${name}: dispatch uses it from the next message on.`);
    } catch (error) {
      if (destroyed) return;
      const newIndex = index ?? contacts.contacts.length;
      setText(formError, explain(error, newIndex));
      context.alert(`Not saved: ${explain(error, newIndex)}`);
      if (error instanceof ApiError && error.code === "contacts_changed") {
        // The list as the file is now; the form keeps what was typed, for another try.
        await load();
        if (editing) editing.version = contacts?.version ?? null;
      }
    } finally {
      saveButton.disabled = false;
    }
  }

  /** @param {Contact} contact */
  async function remove(contact) {
    if (!contacts) return;
    const version = contacts.version;
    const confirmed = await context.confirm({
      title: "Remove this contact?",
      text: `${contact.name} is taken out of contacts.json: their chats get the unknown tier from their next message. Their sessions and conversations are kept.`,
      action: "Remove",
    });
    if (!confirmed) return;
    try {
      const next = await request("DELETE", `${CONTACTS_PATH}/${contact.index}`, { version });
      if (destroyed) return;
      render(next);
      context.notify(`Removed ${contact.name} from the contacts.`);
      heading.focus();
    } catch (error) {
      context.alert(`Could not remove ${contact.name}: ${explain(error, contact.index)}`);
      if (error instanceof ApiError && error.code === "contacts_changed") await load();
    }
  }

  void load();

  return {
    element,
    update: reload.request,
    destroy() {
      destroyed = true;
      reload.cancel();
    },
  };
}

/** @param {unknown} error */
function message(error) {
  return error instanceof Error ? error.message : String(error);
}

/**
 * What went wrong with a change, in the form's words: the daemon names the problems by their
 * place in the file (`contacts[3].handles[0]`); those of the contact in the form are named by
 * its fields instead.
 * @param {unknown} error
 * @param {number} index the contact's place in the file
 */
export function explain(error, index) {
  const text = message(error);
  const own = `contacts[${index}]`;
  return text
    .replace(/^.*, with this change, is invalid:\n/, "This contact cannot be saved:\n")
    .replace(/\nFix these, then run `dispatch contacts check`\.$/, "")
    .replaceAll(`${own}.handles[`, "handle ")
    .replace(/handle (\d+)\]/g, (_match, number) => `handle ${Number(number) + 1}`)
    .replaceAll(`${own}.handles`, "handles")
    .replaceAll(`${own}.name`, "name")
    .replaceAll(`${own}.tier`, "tier");
}
