import { useEffect, useState } from "preact/hooks";
import { api, ApiError, newIdempotencyKey, type Session } from "../api";
import { DegradedBanner, ErrorNote, Loading, Section, useLoad } from "../components";
import { type Bundle, type Reference, type Resource, entries, fmtDateTime, refId } from "../fhir";

interface Slot extends Resource {
  schedule: Reference;
  start: string;
  end: string;
  comment?: string;
}
interface Appointment extends Resource {
  status: string;
  start: string;
  participant?: { actor?: Reference }[];
}
interface Notification {
  id: string;
  kind: string;
  status: string;
  subject: string;
  created: string;
  channel_used: string | null;
  sent_at: string | null;
}
interface Encounter extends Resource {
  participant?: { individual?: Reference }[];
}

function tomorrow(): string {
  const d = new Date(Date.now() + 86400000);
  return d.toISOString().slice(0, 10);
}

// The practitioners who treat the patient (from their visits), named from their schedules.
export async function careTeam(patient: string): Promise<{ id: string; name: string }[]> {
  const enc = await api<Bundle<Encounter>>(`/fhir/R4/Encounter?patient=${patient}&_count=50`, { area: "records" });
  const ids = new Set<string>();
  for (const e of entries(enc.data))
    for (const p of e.participant ?? []) {
      const id = refId(p.individual, "Practitioner");
      if (id) ids.add(id);
    }
  return Promise.all(
    [...ids].slice(0, 8).map(async (id) => {
      try {
        const s = await api<Bundle<Slot>>(`/fhir/R4/Slot?schedule=Schedule/${id}&_count=1`, { area: "scheduling" });
        return { id, name: entries(s.data)[0]?.schedule.display ?? `Practitioner ${id}` };
      } catch {
        return { id, name: `Practitioner ${id}` };
      }
    }),
  );
}

export function Appointments({ session }: { session: Session }) {
  const pid = session.patient!;
  const appts = useLoad(async () => {
    const r = await api<Bundle<Appointment>>(`/fhir/R4/Appointment?patient=${pid}&_count=50`, { area: "scheduling" });
    return entries(r.data).sort((a, b) => a.start.localeCompare(b.start));
  }, []);
  const team = useLoad(() => careTeam(pid), []);
  const notes = useLoad(async () => {
    const r = await api<{ notifications: Notification[] }>(`/api/v1/notifications`, { area: "scheduling" });
    return r.data.notifications;
  }, []);
  const [date, setDate] = useState(tomorrow());
  const [practitioner, setPractitioner] = useState("");
  const [slots, setSlots] = useState<Slot[] | null>(null);
  const [searching, setSearching] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [moving, setMoving] = useState<Appointment | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const names = new Map((team.data ?? []).map((t) => [t.id, t.name]));

  async function search(e?: Event) {
    e?.preventDefault();
    setSearching(true);
    setError(null);
    try {
      const q = new URLSearchParams({ status: "free", start: `ge${date}`, _count: "12" });
      if (practitioner) q.set("schedule", `Schedule/${practitioner}`);
      const r = await api<Bundle<Slot>>(`/fhir/R4/Slot?${q}`, { area: "scheduling" });
      setSlots(entries(r.data));
    } catch (x) {
      setError((x as Error).message);
    } finally {
      setSearching(false);
    }
  }
  useEffect(() => void search(), []);

  function failed(x: unknown, what: string) {
    const err = x as ApiError;
    if (err.mode === "read-only")
      setError(`${what} did not happen: scheduling is read-only right now. Your appointments are unchanged; please try again in a few minutes.`);
    else if (err.status === 409)
      setError(`${what} did not happen: ${err.message} Search again for another time.`);
    else setError(`${what} did not happen: ${err.message}`);
  }

  async function book(slot: Slot) {
    setBusy(slot.id);
    setError(null);
    setDone(null);
    try {
      if (moving) {
        await api(`/fhir/R4/Appointment/${moving.id}/$reschedule`, {
          method: "POST", area: "scheduling", idempotencyKey: newIdempotencyKey("resched"),
          body: { slot: [{ reference: `Slot/${slot.id}` }] },
        });
        setDone(`Your appointment was moved to ${fmtDateTime(slot.start)}.`);
        setMoving(null);
      } else {
        await api(`/fhir/R4/Appointment`, {
          method: "POST", area: "scheduling", idempotencyKey: newIdempotencyKey("book"),
          body: { resourceType: "Appointment", status: "booked", slot: [{ reference: `Slot/${slot.id}` }] },
        });
        setDone(`Booked: ${fmtDateTime(slot.start)} with ${slot.schedule.display ?? "your practitioner"}.`);
      }
      appts.reload();
      notes.reload();
      void search();
    } catch (x) {
      failed(x, moving ? "Rescheduling" : "Booking");
    } finally {
      setBusy(null);
    }
  }

  async function cancel(a: Appointment) {
    setBusy(a.id);
    setError(null);
    setDone(null);
    try {
      await api(`/fhir/R4/Appointment/${a.id}/$cancel`, { method: "POST", area: "scheduling", idempotencyKey: newIdempotencyKey("cancel") });
      setDone(`Cancelled your appointment on ${fmtDateTime(a.start)}.`);
      appts.reload();
      void search();
    } catch (x) {
      failed(x, "Cancelling");
    } finally {
      setBusy(null);
    }
  }

  const now = new Date().toISOString();
  const list = appts.data ?? [];
  const upcoming = list.filter((a) => a.start >= now && a.status !== "cancelled");
  const past = list.filter((a) => a.start < now || a.status === "cancelled");
  const who = (a: Appointment) => {
    const id = a.participant?.map((p) => refId(p.actor, "Practitioner")).find(Boolean);
    return id ? names.get(id) ?? `Practitioner ${id}` : "";
  };

  return (
    <>
      <h1>Appointments</h1>
      <DegradedBanner area="scheduling" />
      <div aria-live="polite">
        {done && <p class="success" role="status">{done}</p>}
      </div>
      <ErrorNote error={error} />
      <div class="grid">
        <Section title="Upcoming" id="h-upcoming">
          <ErrorNote error={appts.error} onRetry={appts.reload} />
          {appts.loading && !appts.data && <Loading what="appointments" />}
          {appts.data && upcoming.length === 0 && <p>No upcoming appointments.</p>}
          <ul class="list">
            {upcoming.map((a) => (
              <li key={a.id} data-appointment={a.id}>
                <strong>{fmtDateTime(a.start)}</strong> {who(a) && <>with {who(a)}</>} <span class="tag">{a.status}</span>
                <div class="actions">
                  <button type="button" class="secondary" disabled={busy !== null} onClick={() => cancel(a)}
                    aria-label={`Cancel the appointment on ${fmtDateTime(a.start)}`}>
                    {busy === a.id ? "Cancelling…" : "Cancel"}
                  </button>
                  <button type="button" class="secondary" disabled={busy !== null}
                    onClick={() => { setMoving(a); setDone(null); }}
                    aria-label={`Reschedule the appointment on ${fmtDateTime(a.start)}`}>
                    Reschedule
                  </button>
                </div>
              </li>
            ))}
          </ul>
        </Section>
        <Section title={moving ? `Pick a new time for ${fmtDateTime(moving.start)}` : "Book an appointment"} id="h-book">
          <form onSubmit={search} class="inline">
            <div>
              <label for="slot-date">From</label>
              <input id="slot-date" type="date" value={date} min={new Date().toISOString().slice(0, 10)}
                onInput={(e) => setDate((e.target as HTMLInputElement).value)} required />
            </div>
            <div>
              <label for="slot-who">Practitioner</label>
              <select id="slot-who" value={practitioner} onChange={(e) => setPractitioner((e.target as HTMLSelectElement).value)}>
                <option value="">Anyone</option>
                {(team.data ?? []).map((t) => <option key={t.id} value={t.id}>{t.name}</option>)}
              </select>
            </div>
            <button type="submit" disabled={searching}>{searching ? "Searching…" : "Find times"}</button>
            {moving && <button type="button" class="secondary" onClick={() => setMoving(null)}>Keep the old time</button>}
          </form>
          {searching && <Loading what="free times" />}
          {slots && slots.length === 0 && <p>No free times from that date. Try a later date or anyone.</p>}
          <ul class="list slots">
            {(slots ?? []).map((s) => (
              <li key={s.id} data-slot={s.id}>
                <strong>{fmtDateTime(s.start)}</strong> — {s.schedule.display}
                <div class="hint">{s.comment}</div>
                <button type="button" disabled={busy !== null} onClick={() => book(s)}
                  aria-label={`${moving ? "Move here:" : "Book"} ${fmtDateTime(s.start)} with ${s.schedule.display ?? ""}`}>
                  {busy === s.id ? "Booking…" : moving ? "Move here" : "Book"}
                </button>
              </li>
            ))}
          </ul>
        </Section>
        <Section title="Notifications" id="h-notifications">
          <ErrorNote error={notes.error} onRetry={notes.reload} />
          {notes.data && notes.data.length === 0 && <p>No notifications yet.</p>}
          <ul class="list">
            {(notes.data ?? []).slice(0, 10).map((n) => (
              <li key={n.id}>
                {n.subject} <span class="tag">{n.status === "sent" ? `sent by ${n.channel_used ?? "email"}` : n.status}</span>
                <div class="hint">{n.sent_at ? fmtDateTime(n.sent_at) : `queued ${fmtDateTime(n.created)}`}</div>
              </li>
            ))}
          </ul>
        </Section>
        <Section title="Past and cancelled" id="h-past">
          {appts.data && past.length === 0 && <p>None yet.</p>}
          <ul class="list">
            {past.slice(-20).reverse().map((a) => (
              <li key={a.id}>
                {fmtDateTime(a.start)} {who(a) && <>with {who(a)}</>} <span class="tag">{a.status}</span>
              </li>
            ))}
          </ul>
        </Section>
      </div>
    </>
  );
}
