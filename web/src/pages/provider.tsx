import { useEffect, useState } from "preact/hooks";
import { api, ApiError, newIdempotencyKey } from "../api";
import { DegradedBanner, ErrorNote, Loading, Section, useLoad } from "../components";
import { type Bundle, type HumanName, type Resource, entries, fmtDate, fmtDateTime, personName, refId, toBase64 } from "../fhir";
import { navigate } from "../router";
import { type Chart as ChartData, ChartView, loadChart } from "./summary";
import { type Message, type Thread, sendFailed, threads } from "./messages";

interface Patient extends Resource {
  name?: HumanName[];
  birthDate?: string;
  identifier?: { value?: string }[];
}

// Messages between this provider and one patient: threads, replies, a new conversation.
// `initial`: a conversation to open (the inbox links here with ?thread=).
function PatientMessages({ patient, initial }: { patient: string; initial: string | null }) {
  const msgs = useLoad(async () => {
    const r = await api<Bundle<Message>>(`/fhir/R4/Communication?patient=${patient}&_count=100`, { area: "messages" });
    return threads(entries(r.data));
  }, [patient]);
  const [open, setOpen] = useState<string | null>(null);
  const [opened, setOpened] = useState(false);
  useEffect(() => {
    const t = initial && msgs.data?.find((x) => x.id === initial);
    if (t && !opened) {
      setOpened(true);
      void openThread(t);
      document.getElementById("h-pmsgs")?.scrollIntoView();
    }
  }, [msgs.data, initial]);
  const [text, setText] = useState("");
  const [subject, setSubject] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const thread = msgs.data?.find((t) => t.id === open);

  async function openThread(t: Thread) {
    setOpen(t.id);
    const unread = t.messages.filter((m) => refId(m.sender, "Patient") && !m.received);
    if (unread.length) {
      await Promise.allSettled(unread.map((m) => api(`/fhir/R4/Communication/${m.id}/$read`, { method: "POST", area: "messages" })));
      msgs.reload();
    }
  }
  async function send(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setDone(null);
    const body: Record<string, unknown> = {
      resourceType: "Communication",
      recipient: [{ reference: `Patient/${patient}` }],
      payload: [{ contentString: text.trim() }],
    };
    if (thread) body.inResponseTo = [{ reference: `Communication/${thread.messages[thread.messages.length - 1].id}` }];
    else body.topic = { text: subject.trim() };
    try {
      await api(`/fhir/R4/Communication`, { method: "POST", area: "messages", idempotencyKey: newIdempotencyKey("msg"), body });
      setText("");
      setSubject("");
      setDone("Your message was sent.");
      msgs.reload();
    } catch (x) {
      setError(sendFailed(x));
    } finally {
      setBusy(false);
    }
  }
  return (
    <Section title="Messages with this patient" id="h-pmsgs">
      <DegradedBanner area="messages" />
      <ErrorNote error={msgs.error} onRetry={msgs.reload} />
      {msgs.loading && !msgs.data && <Loading what="messages" />}
      {msgs.data && msgs.data.length === 0 && <p>No messages with this patient.</p>}
      <ul class="list">
        {(msgs.data ?? []).map((t) => {
          const unread = t.messages.filter((m) => refId(m.sender, "Patient") && !m.received).length;
          return (
            <li key={t.id}>
              <button type="button" class="link" aria-expanded={open === t.id} onClick={() => openThread(t)}>{t.subject}</button>{" "}
              {unread > 0 && <span class="tag unread">{unread} new</span>}
              <div class="hint">{fmtDateTime(t.messages[t.messages.length - 1].sent)}</div>
            </li>
          );
        })}
      </ul>
      {thread && (
        <ol class="thread" aria-label={`Conversation: ${thread.subject}`}>
          {thread.messages.map((m) => {
            const fromPatient = !!refId(m.sender, "Patient");
            return (
              <li key={m.id} class={fromPatient ? "theirs" : "mine"}>
                <div class="hint">{fromPatient ? "Patient" : "You"}, {fmtDateTime(m.sent)}{!fromPatient && (m.received ? " · read" : " · not read yet")}</div>
                <p>{m.payload?.[0]?.contentString}</p>
              </li>
            );
          })}
        </ol>
      )}
      <div aria-live="polite">{done && <p class="success" role="status">{done}</p>}</div>
      <ErrorNote error={error} />
      <form onSubmit={send}>
        {!thread && (
          <>
            <label for="pm-subject">Subject</label>
            <input id="pm-subject" required maxLength={200} value={subject} onInput={(e) => setSubject((e.target as HTMLInputElement).value)} />
          </>
        )}
        <label for="pm-text">{thread ? `Reply in "${thread.subject}"` : "New message to the patient"}</label>
        <textarea id="pm-text" rows={3} required maxLength={20000} value={text} onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} />
        <button type="submit" disabled={busy}>{busy ? "Sending…" : thread ? "Send reply" : "Send"}</button>
        {thread && <button type="button" class="secondary" onClick={() => setOpen(null)}>New conversation instead</button>}
      </form>
    </Section>
  );
}

function UnreadFromPatients() {
  const u = useLoad(async () => (await api<{ unread: number }>(`/api/v1/messages/unread`, { area: "messages" })).data.unread, []);
  if (u.data === undefined) return null;
  return (
    <p class="banner banner-info" role="status">
      {u.data === 0 ? "No unread messages from patients." : `${u.data} unread message${u.data === 1 ? "" : "s"} from patients.`}{" "}
      <a href="/provider/inbox">Open the inbox</a>
    </p>
  );
}

export function ProviderHome() {
  const [name, setName] = useState("");
  const [birthdate, setBirthdate] = useState("");
  const [identifier, setIdentifier] = useState("");
  const [found, setFound] = useState<Patient[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  async function search(e: Event) {
    e.preventDefault();
    const p = new URLSearchParams();
    if (name.trim()) p.set("name", name.trim());
    if (birthdate) p.set("birthdate", birthdate);
    if (identifier.trim()) p.set("identifier", identifier.trim());
    if ([...p].length === 0) {
      setError("Enter a name, a birth date or a record number.");
      return;
    }
    p.set("_count", "20");
    setBusy(true);
    setError(null);
    try {
      const r = await api<Bundle<Patient>>(`/fhir/R4/Patient?${p}`, { area: "records" });
      setFound(entries(r.data));
    } catch (x) {
      setError(`The search did not run: ${(x as Error).message}`);
    } finally {
      setBusy(false);
    }
  }
  return (
    <>
      <h1>Your patients</h1>
      <DegradedBanner area="records" />
      <UnreadFromPatients />
      <Section title="Look up a patient" id="h-lookup">
        <form onSubmit={search} class="inline">
          <div>
            <label for="p-name">Family name</label>
            <input id="p-name" value={name} maxLength={100} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
          </div>
          <div>
            <label for="p-birth">Birth date</label>
            <input id="p-birth" type="date" value={birthdate} onInput={(e) => setBirthdate((e.target as HTMLInputElement).value)} />
          </div>
          <div>
            <label for="p-id">Record number</label>
            <input id="p-id" value={identifier} maxLength={64} onInput={(e) => setIdentifier((e.target as HTMLInputElement).value)} />
          </div>
          <button type="submit" disabled={busy}>{busy ? "Searching…" : "Search"}</button>
        </form>
        <ErrorNote error={error} />
        {found && found.length === 0 && <p>No patient of yours matches. Patients you do not treat are not listed.</p>}
        <ul class="list">
          {(found ?? []).map((p) => (
            <li key={p.id}>
              <a href={`/provider/patients/${p.id}`}>{personName(p.name)}</a>
              <div class="hint">born {fmtDate(p.birthDate)} · {p.identifier?.[0]?.value}</div>
            </li>
          ))}
        </ul>
      </Section>
      <Section title="Open a chart by patient number" id="h-open">
        <OpenById />
      </Section>
    </>
  );
}

function OpenById() {
  const [id, setId] = useState("");
  return (
    <form class="inline" onSubmit={(e) => { e.preventDefault(); if (/^\d+$/.test(id)) navigate(`/provider/patients/${id}`); }}>
      <div>
        <label for="open-id">Patient number</label>
        <input id="open-id" inputMode="numeric" pattern="[0-9]+" required value={id}
          onInput={(e) => setId((e.target as HTMLInputElement).value)} />
      </div>
      <button type="submit" class="secondary">Open chart</button>
    </form>
  );
}

export function Chart({ id }: { id: string }) {
  const [reason, setReason] = useState<string | null>(null);
  const [draftReason, setDraftReason] = useState("");
  const headers = reason ? { "X-Break-Glass-Reason": reason } : undefined;
  const chart = useLoad(() => loadChart(id, headers), [id, reason]);
  const denied = chart.status === 403; // no care relationship: break-the-glass is offered
  return (
    <>
      <p><a href="/provider">← Back to the patient search</a></p>
      <h1>Chart of patient {id}</h1>
      <DegradedBanner area="records" />
      {reason && (
        <p class="banner banner-warn" role="status">
          Emergency access: you opened this chart without a care relationship ("{reason}"). This access is recorded and will be reviewed.
        </p>
      )}
      {denied && !reason ? (
        <Section title="You do not treat this patient" id="h-bg">
          <p>{chart.error}</p>
          <form onSubmit={(e) => { e.preventDefault(); if (draftReason.trim()) setReason(draftReason.trim()); }}>
            <p class="banner banner-warn">
              Break the glass only in an emergency. Your name, the time and your reason are recorded in the audit trail and reviewed.
            </p>
            <label for="bg-reason">Reason for emergency access</label>
            <input id="bg-reason" required maxLength={200} value={draftReason}
              onInput={(e) => setDraftReason((e.target as HTMLInputElement).value)} />
            <button type="submit" class="danger">Break the glass and open the chart</button>
          </form>
        </Section>
      ) : (
        <ErrorNote error={chart.error} onRetry={chart.reload} />
      )}
      {chart.loading && !chart.data && <Loading what="the chart" />}
      {chart.data && (
        <>
          <NoteEditor patient={id} headers={headers} onSaved={chart.reload} chart={chart.data} />
          {!reason && <PatientMessages patient={id} initial={new URLSearchParams(location.search).get("thread")} />}
          <ChartView chart={chart.data} signedOnly={false} />
        </>
      )}
    </>
  );
}

interface NoteResource extends Resource {
  docStatus?: string;
}

function NoteEditor({ patient, headers, onSaved, chart }: {
  patient: string; headers?: Record<string, string>; onSaved: () => void; chart: ChartData;
}) {
  const [title, setTitle] = useState("");
  const [text, setText] = useState("");
  const [key, setKey] = useState(() => newIdempotencyKey("note"));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const drafts = chart.notes.filter((n) => n.docStatus !== "final");

  async function save(e: Event) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      const r = await api<NoteResource>(`/fhir/R4/DocumentReference`, {
        method: "POST", area: "records", idempotencyKey: key, headers,
        body: {
          resourceType: "DocumentReference", status: "current", docStatus: "preliminary",
          subject: { reference: `Patient/${patient}` },
          content: [{ attachment: { contentType: "text/plain", data: toBase64(text), title: title.trim() || "Note" } }],
        },
      });
      setDone(`Draft note ${r.data.id} saved. Sign it to make it final.`);
      setTitle("");
      setText("");
      setKey(newIdempotencyKey("note"));
      onSaved();
    } catch (x) {
      setError(`The note was not saved: ${(x as ApiError).message} Your text is still here; saving again is safe.`);
    } finally {
      setBusy(false);
    }
  }

  async function sign(id: string) {
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      await api(`/fhir/R4/DocumentReference/${id}/$sign`, { method: "POST", area: "records", headers });
      setDone(`Note ${id} is signed: it is final and can no longer change.`);
      onSaved();
    } catch (x) {
      setError(`The note was not signed: ${(x as ApiError).message}`);
    } finally {
      setBusy(false);
    }
  }

  return (
    <Section title="Write a note" id="h-write">
      <div aria-live="polite">{done && <p class="success" role="status">{done}</p>}</div>
      <ErrorNote error={error} />
      <form onSubmit={save}>
        <label for="note-title">Title</label>
        <input id="note-title" maxLength={200} value={title} onInput={(e) => setTitle((e.target as HTMLInputElement).value)} />
        <label for="note-text">Note</label>
        <textarea id="note-text" rows={5} required value={text} onInput={(e) => setText((e.target as HTMLTextAreaElement).value)} />
        <button type="submit" disabled={busy}>{busy ? "Saving…" : "Save draft"}</button>
      </form>
      {drafts.length > 0 && (
        <>
          <h3>Drafts to sign</h3>
          <ul class="list">
            {drafts.map((n) => (
              <li key={n.id}>
                {n.content?.[0]?.attachment?.title ?? "Note"} ({n.id}){" "}
                <button type="button" disabled={busy} onClick={() => sign(n.id)} aria-label={`Sign note ${n.id}`}>Sign</button>
              </li>
            ))}
          </ul>
        </>
      )}
    </Section>
  );
}
