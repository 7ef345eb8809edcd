import { api, type Session } from "../api";
import { DegradedBanner, ErrorNote, Loading, Section, useLoad } from "../components";
import {
  type Bundle, type CodeableConcept, type HumanName, type Reference, type Resource,
  concept, entries, fmtDate, fmtDateTime, fromBase64, personName,
} from "../fhir";

interface Patient extends Resource {
  name?: HumanName[];
  birthDate?: string;
  gender?: string;
  identifier?: { value?: string }[];
}
interface Clinical extends Resource {
  code?: CodeableConcept;
  medicationCodeableConcept?: CodeableConcept;
  clinicalStatus?: CodeableConcept;
  criticality?: string;
  reaction?: { manifestation?: CodeableConcept[] }[];
  dosage?: { text?: string }[];
  status?: string;
  onsetDateTime?: string;
  effectivePeriod?: { start?: string };
}
interface Encounter extends Resource {
  type?: CodeableConcept[];
  period?: { start?: string };
  status?: string;
  reasonCode?: CodeableConcept[];
}
export interface Note extends Resource {
  docStatus?: string;
  date?: string;
  author?: Reference[];
  content?: { attachment?: { title?: string; data?: string } }[];
}

export function noteText(n: Note): string {
  return fromBase64(n.content?.[0]?.attachment?.data ?? "");
}

export interface Chart {
  patient?: Patient;
  allergies: Clinical[];
  medications: Clinical[];
  conditions: Clinical[];
  encounters: Encounter[];
  notes: Note[];
}

// The summary, the encounters and the notes of one patient (critical tier).
export async function loadChart(id: string, headers?: Record<string, string>): Promise<Chart> {
  const [sum, enc, notes] = await Promise.all([
    api<Bundle>(`/fhir/R4/Patient/${id}/$summary`, { area: "records", headers }),
    api<Bundle<Encounter>>(`/fhir/R4/Encounter?patient=${id}`, { area: "records", headers }),
    api<Bundle<Note>>(`/fhir/R4/DocumentReference?patient=${id}`, { area: "records", headers }),
  ]);
  const all = entries(sum.data);
  const of = (t: string) => all.filter((r) => r.resourceType === t) as Clinical[];
  return {
    patient: all.find((r) => r.resourceType === "Patient") as Patient | undefined,
    allergies: of("AllergyIntolerance"),
    medications: of("MedicationStatement"),
    conditions: of("Condition"),
    encounters: entries(enc.data).sort((a, b) => (b.period?.start ?? "").localeCompare(a.period?.start ?? "")),
    notes: entries(notes.data),
  };
}

export function ChartView({ chart, signedOnly }: { chart: Chart; signedOnly: boolean }) {
  const p = chart.patient;
  const notes = signedOnly ? chart.notes.filter((n) => n.docStatus === "final") : chart.notes;
  return (
    <div class="grid">
      {p && (
        <Section title="Patient" id="h-patient">
          <dl class="facts">
            <dt>Name</dt><dd>{personName(p.name)}</dd>
            <dt>Born</dt><dd>{fmtDate(p.birthDate)}</dd>
            <dt>Sex</dt><dd>{p.gender ?? "—"}</dd>
            <dt>Record number</dt><dd>{p.identifier?.[0]?.value ?? "—"}</dd>
          </dl>
        </Section>
      )}
      <Section title="Allergies" id="h-allergies">
        {chart.allergies.length === 0 ? <p>No known allergies.</p> : (
          <ul class="list">
            {chart.allergies.map((a) => (
              <li key={a.id}>
                <strong>{concept(a.code)}</strong>
                {a.reaction?.[0]?.manifestation?.[0] && <> — {concept(a.reaction[0].manifestation[0])}</>}
                {a.criticality && <span class="tag">{a.criticality} risk</span>}
              </li>
            ))}
          </ul>
        )}
      </Section>
      <Section title="Medications" id="h-medications">
        {chart.medications.length === 0 ? <p>No medications on record.</p> : (
          <ul class="list">
            {chart.medications.map((m) => (
              <li key={m.id}>
                <strong>{concept(m.medicationCodeableConcept)}</strong>
                {m.dosage?.[0]?.text && <div>{m.dosage[0].text}</div>}
                <span class="tag">{m.status}</span>
              </li>
            ))}
          </ul>
        )}
      </Section>
      <Section title="Conditions" id="h-conditions">
        {chart.conditions.length === 0 ? <p>No conditions on record.</p> : (
          <ul class="list">
            {chart.conditions.map((c) => (
              <li key={c.id}>
                <strong>{concept(c.code)}</strong> <span class="tag">{concept(c.clinicalStatus)}</span>
                {c.onsetDateTime && <div class="hint">since {fmtDate(c.onsetDateTime)}</div>}
              </li>
            ))}
          </ul>
        )}
      </Section>
      <Section title="Visits" id="h-visits">
        {chart.encounters.length === 0 ? <p>No visits on record.</p> : (
          <ul class="list">
            {chart.encounters.map((e) => (
              <li key={e.id}>
                <strong>{fmtDate(e.period?.start)}</strong> — {concept(e.type?.[0])}
                {e.reasonCode?.[0] && <div class="hint">{concept(e.reasonCode[0])}</div>}
              </li>
            ))}
          </ul>
        )}
      </Section>
      <Section title={signedOnly ? "Clinical notes" : "Notes"} id="h-notes">
        {notes.length === 0 ? <p>No {signedOnly ? "signed " : ""}notes yet.</p> : (
          <ul class="list notes">
            {notes.map((n) => (
              <li key={n.id} data-note={n.id}>
                <strong>{n.content?.[0]?.attachment?.title ?? "Note"}</strong>{" "}
                <span class="tag">{n.docStatus === "final" ? "signed" : "draft, not signed"}</span>
                <div class="hint">{fmtDateTime(n.date)}</div>
                <p class="note-text">{noteText(n)}</p>
              </li>
            ))}
          </ul>
        )}
      </Section>
    </div>
  );
}

export function Summary({ session }: { session: Session }) {
  const { data, error, loading, reload } = useLoad(() => loadChart(session.patient!), []);
  return (
    <>
      <h1>Your health summary</h1>
      <DegradedBanner area="records" />
      <ErrorNote error={error} onRetry={reload} />
      {loading && !data && <Loading what="your records" />}
      {data && <ChartView chart={data} signedOnly />}
    </>
  );
}
