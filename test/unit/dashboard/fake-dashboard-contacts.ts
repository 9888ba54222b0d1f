import { DispatchError } from "../../../src/utils/errors.js";
import type {
  ContactInput,
  ContactsView,
  DashboardContacts,
} from "../../../src/dashboard/dashboard-contacts.js";

/** The contacts port in memory: records calls, refuses a stale version, and can be made to fail. */
export class FakeDashboardContacts implements DashboardContacts {
  readonly calls: string[] = [];
  contacts: ContactInput[] = [];
  version = "v1";
  /** The next change throws this, then it is cleared. */
  failure: Error | undefined;

  list(): Promise<ContactsView> {
    return Promise.resolve({
      file: "/home/me/dispatch/contacts.json",
      version: this.version,
      problems: [],
      editable: true,
      tiers: [
        { name: "favorite", answered: true },
        { name: "unknown", answered: false },
      ],
      contacts: this.contacts.map((contact, index) => ({
        index,
        name: contact.name,
        tier: contact.tier,
        handles: contact.handles.map((raw) => ({
          raw,
          chat_id: raw,
          problem: null,
          session: null,
        })),
      })),
      groups: [],
      unlisted: [],
    });
  }

  add(contact: ContactInput, version: string | null): Promise<ContactsView> {
    return this.change(`add ${contact.name}`, version, () => this.contacts.push(contact));
  }

  update(index: number, contact: ContactInput, version: string | null): Promise<ContactsView> {
    return this.change(`update ${index} ${contact.name}`, version, () => {
      this.require(index);
      this.contacts[index] = contact;
    });
  }

  remove(index: number, version: string | null): Promise<ContactsView> {
    return this.change(`remove ${index}`, version, () => {
      this.require(index);
      this.contacts.splice(index, 1);
    });
  }

  private async change(call: string, version: string | null, work: () => void) {
    this.calls.push(call);
    if (this.failure !== undefined) {
      const failure = this.failure;
      this.failure = undefined;
      throw failure;
    }
    if (version !== this.version) throw new DispatchError("contacts_changed", "changed meanwhile");
    work();
    this.version = `v${Number(this.version.slice(1)) + 1}`;
    return this.list();
  }

  private require(index: number): void {
    if (index >= this.contacts.length) throw new DispatchError("not_found", `no contact ${index}`);
  }
}
