import { useState } from "preact/hooks";
import { api } from "../api";
import { DegradedBanner, ErrorNote, Loading, useLoad } from "../components";
import { fmtDateTime } from "../fhir";

// A provider's inbox (GET /api/v1/messages/inbox): conversations with all their patients,
// newest activity first, unread ones marked; a conversation opens on the patient's chart.

interface InboxThread {
  thread: string;
  patient: { reference: string; display: string };
  subject: string;
  last_sent: string;
  last_from_patient: boolean;
  unread: number;
  messages: number;
}
interface Inbox { threads: InboxThread[]; unread_total: number }

export function ProviderInbox() {
  const [unreadOnly, setUnreadOnly] = useState(false);
  const inbox = useLoad(
    async () => (await api<Inbox>(`/api/v1/messages/inbox?_count=100${unreadOnly ? "&unread=true" : ""}`, { area: "messages" })).data,
    [unreadOnly],
  );
  const d = inbox.data;
  return (
    <>
      <h1>Inbox</h1>
      <DegradedBanner area="messages" />
      <p class="hint" aria-live="polite">
        {d ? (d.unread_total === 0 ? "No unread messages from patients." : `${d.unread_total} unread message${d.unread_total === 1 ? "" : "s"} from patients.`) : ""}
      </p>
      <label class="inline">
        <input type="checkbox" checked={unreadOnly} onChange={(e) => setUnreadOnly((e.target as HTMLInputElement).checked)} />
        Unread only
      </label>
      <ErrorNote error={inbox.error} onRetry={inbox.reload} />
      {inbox.loading && !d && <Loading what="your inbox" />}
      {d && d.threads.length === 0 && <p>{unreadOnly ? "Nothing unread." : "No conversations with your patients yet."}</p>}
      {d && d.threads.length > 0 && (
        <ul class="list inbox" aria-label="Conversations">
          {d.threads.map((t) => {
            const id = t.patient.reference.split("/")[1];
            return (
              <li key={t.thread} data-thread={t.thread} class={t.unread > 0 ? "has-unread" : undefined}>
                <a href={`/provider/patients/${id}?thread=${t.thread}`}>
                  <strong>{t.subject}</strong>
                </a>{" "}
                {t.unread > 0 && <span class="tag unread">{t.unread} new</span>}
                <div>{t.patient.display} <span class="hint">(patient {id})</span></div>
                <div class="hint">
                  {t.last_from_patient ? "Last from the patient" : "Last from you"}, {fmtDateTime(t.last_sent)} · {t.messages} message{t.messages === 1 ? "" : "s"}
                </div>
              </li>
            );
          })}
        </ul>
      )}
    </>
  );
}
