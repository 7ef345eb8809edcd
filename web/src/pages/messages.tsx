import { useState } from "preact/hooks";
import { api, ApiError, newIdempotencyKey, type Session } from "../api";
import { DegradedBanner, ErrorNote, Loading, Section, useLoad } from "../components";
import { type Bundle, type Reference, type Resource, entries, fmtDateTime, refId } from "../fhir";
import { careTeam } from "./appointments";

export interface Message extends Resource {
  identifier?: { system?: string; value?: string }[];
  topic?: { text?: string };
  sent: string;
  received?: string;
  sender?: Reference;
  recipient?: Reference[];
  payload?: { contentString?: string }[];
}
export interface Thread {
  id: string;
  subject: string;
  practitioner: string;
  messages: Message[];
}

export function threads(ms: Message[]): Thread[] {
  const by = new Map<string, Thread>();
  for (const m of ms) {
    const id = m.identifier?.find((i) => i.system === "urn:continuum:thread")?.value ?? m.id;
    const prac = refId(m.sender, "Practitioner") ?? refId(m.recipient?.[0], "Practitioner") ?? "";
    let t = by.get(id);
    if (!t) by.set(id, (t = { id, subject: m.topic?.text ?? "(no subject)", practitioner: prac, messages: [] }));
    t.messages.push(m);
  }
  const out = [...by.values()];
  for (const t of out) {
    t.messages.sort((a, b) => a.sent.localeCompare(b.sent));
    t.subject = t.messages[0].topic?.text ?? t.subject; // the conversation's first subject, not "Re: …"
  }
  return out.sort((a, b) => b.messages[b.messages.length - 1].sent.localeCompare(a.messages[a.messages.length - 1].sent));
}

export function sendFailed(x: unknown): string {
  const e = x as ApiError;
  if (e.mode === "read-only")
    return "Your message was not sent: messaging is read-only right now. Copy your text and try again in a few minutes. For anything urgent, call your clinic.";
  return `Your message was not sent: ${e.message}`;
}

export function Messages({ session }: { session: Session }) {
  const pid = session.patient!;
  const msgs = useLoad(async () => {
    const [r, u] = await Promise.all([
      api<Bundle<Message>>(`/fhir/R4/Communication?patient=${pid}&_count=100`, { area: "messages" }),
      api<{ unread: number }>(`/api/v1/messages/unread`, { area: "messages" }),
    ]);
    return { threads: threads(entries(r.data)), unread: u.data.unread };
  }, []);
  const team = useLoad(() => careTeam(pid), []);
  const names = new Map((team.data ?? []).map((t) => [t.id, t.name]));
  const [open, setOpen] = useState<string | null>(null);
  const [reply, setReply] = useState("");
  const [to, setTo] = useState("");
  const [subject, setSubject] = useState("");
  const [text, setText] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const thread = msgs.data?.threads.find((t) => t.id === open);

  async function openThread(t: Thread) {
    setOpen(t.id);
    setDone(null);
    // Read receipts: mark what the care team sent as read.
    const unread = t.messages.filter((m) => refId(m.sender, "Practitioner") && !m.received);
    if (unread.length) {
      await Promise.allSettled(unread.map((m) => api(`/fhir/R4/Communication/${m.id}/$read`, { method: "POST", area: "messages" })));
      msgs.reload();
    }
  }

  async function send(body: Record<string, unknown>, after: () => void) {
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      await api(`/fhir/R4/Communication`, { method: "POST", area: "messages", idempotencyKey: newIdempotencyKey("msg"), body });
      after();
      setDone("Your message was sent.");
      msgs.reload();
    } catch (x) {
      setError(sendFailed(x));
    } finally {
      setBusy(false);
    }
  }

  function sendReply(e: Event) {
    e.preventDefault();
    if (!thread || !reply.trim()) return;
    const last = thread.messages[thread.messages.length - 1];
    void send({
      resourceType: "Communication",
      recipient: [{ reference: `Practitioner/${thread.practitioner}` }],
      inResponseTo: [{ reference: `Communication/${last.id}` }],
      payload: [{ contentString: reply.trim() }],
    }, () => setReply(""));
  }

  function sendNew(e: Event) {
    e.preventDefault();
    void send({
      resourceType: "Communication",
      recipient: [{ reference: `Practitioner/${to}` }],
      topic: { text: subject.trim() },
      payload: [{ contentString: text.trim() }],
    }, () => { setSubject(""); setText(""); });
  }

  return (
    <>
      <h1>Messages with your care team</h1>
      <DegradedBanner area="messages" />
      <div aria-live="polite">{done && <p class="success" role="status">{done}</p>}</div>
      <ErrorNote error={error} />
      <div class="grid">
        <Section title={`Conversations${msgs.data ? ` (${msgs.data.unread} unread)` : ""}`} id="h-threads">
          <ErrorNote error={msgs.error} onRetry={msgs.reload} />
          {msgs.loading && !msgs.data && <Loading what="messages" />}
          {msgs.data && msgs.data.threads.length === 0 && <p>No messages yet.</p>}
          <ul class="list">
            {(msgs.data?.threads ?? []).map((t) => {
              const unread = t.messages.filter((m) => refId(m.sender, "Practitioner") && !m.received).length;
              return (
                <li key={t.id}>
                  <button type="button" class="link" aria-expanded={open === t.id} onClick={() => openThread(t)}>
                    {t.subject}
                  </button>{" "}
                  {unread > 0 && <span class="tag unread">{unread} new</span>}
                  <div class="hint">with {names.get(t.practitioner) ?? `Practitioner ${t.practitioner}`}, {fmtDateTime(t.messages[t.messages.length - 1].sent)}</div>
                </li>
              );
            })}
          </ul>
        </Section>
        {thread && (
          <Section title={thread.subject} id="h-thread">
            <ol class="thread">
              {thread.messages.map((m) => {
                const mine = !!refId(m.sender, "Patient");
                return (
                  <li key={m.id} class={mine ? "mine" : "theirs"}>
                    <div class="hint">
                      {mine ? "You" : names.get(thread.practitioner) ?? "Your care team"}, {fmtDateTime(m.sent)}
                      {mine && (m.received ? ` · read ${fmtDateTime(m.received)}` : " · not read yet")}
                    </div>
                    <p>{m.payload?.[0]?.contentString}</p>
                  </li>
                );
              })}
            </ol>
            <form onSubmit={sendReply}>
              <label for="reply">Reply</label>
              <textarea id="reply" rows={3} maxLength={20000} required value={reply}
                onInput={(e) => setReply((e.target as HTMLTextAreaElement).value)} />
              <button type="submit" disabled={busy}>{busy ? "Sending…" : "Send reply"}</button>
            </form>
          </Section>
        )}
        <Section title="New message" id="h-new">
          <form onSubmit={sendNew}>
            <label for="msg-to">To</label>
            <select id="msg-to" required value={to} onChange={(e) => setTo((e.target as HTMLSelectElement).value)}>
              <option value="">Choose someone on your care team</option>
              {(team.data ?? []).map((t) => <option key={t.id} value={t.id}>{t.name}</option>)}
            </select>
            <label for="msg-subject">Subject</label>
            <input id="msg-subject" required maxLength={200} value={subject}
              onInput={(e) => setSubject((e.target as HTMLInputElement).value)} />
            <label for="msg-text">Message</label>
            <textarea id="msg-text" rows={4} required maxLength={20000} value={text}
              onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} />
            <p class="hint">Not for emergencies: call 911 or your clinic.</p>
            <button type="submit" disabled={busy}>{busy ? "Sending…" : "Send"}</button>
          </form>
        </Section>
      </div>
    </>
  );
}
