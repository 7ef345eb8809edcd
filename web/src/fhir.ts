// Just enough FHIR R4 for the pages: bundles, names, codeable concepts, dates.

export interface Reference {
  reference?: string;
  display?: string;
}
export interface CodeableConcept {
  text?: string;
  coding?: { display?: string; code?: string }[];
}
export interface Resource {
  resourceType: string;
  id: string;
  [k: string]: unknown;
}
export interface Bundle<T = Resource> {
  resourceType: "Bundle";
  total?: number;
  entry?: { resource: T }[];
  link?: { relation: string; url: string }[];
}

export function entries<T>(b: Bundle<T> | undefined): T[] {
  return (b?.entry ?? []).map((e) => e.resource);
}

export function concept(c: CodeableConcept | undefined): string {
  return c?.text ?? c?.coding?.[0]?.display ?? c?.coding?.[0]?.code ?? "—";
}

export interface HumanName {
  family?: string;
  given?: string[];
  text?: string;
}
export function personName(names: HumanName[] | undefined): string {
  const n = names?.[0];
  if (!n) return "(no name)";
  return n.text ?? [...(n.given ?? []), n.family ?? ""].join(" ").trim();
}

export function refId(r: Reference | undefined, type: string): string | undefined {
  const ref = r?.reference ?? "";
  return ref.startsWith(type + "/") ? ref.slice(type.length + 1) : undefined;
}

const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const timeFmt = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });

export function fmtDate(s: string | undefined): string {
  if (!s) return "—";
  const d = new Date(s.length === 10 ? s + "T00:00:00" : s);
  return isNaN(d.getTime()) ? s : dateFmt.format(d);
}
export function fmtDateTime(s: string | undefined): string {
  if (!s) return "—";
  const d = new Date(s);
  return isNaN(d.getTime()) ? s : dateTimeFmt.format(d);
}
export function fmtTime(s: string | undefined): string {
  if (!s) return "—";
  const d = new Date(s);
  return isNaN(d.getTime()) ? s : timeFmt.format(d);
}
export function money(m: { value?: number; currency?: string } | undefined): string {
  if (!m || m.value === undefined) return "—";
  return new Intl.NumberFormat(undefined, { style: "currency", currency: m.currency ?? "USD" }).format(
    m.value,
  );
}

// Base64 of UTF-8 text (note bodies).
export function toBase64(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}
export function fromBase64(data: string): string {
  try {
    const bin = atob(data);
    return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
  } catch {
    return "";
  }
}
