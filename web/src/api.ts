// The portal's HTTP API, as the pages use it.
//
// The session token lives in this module's memory only: never localStorage,
// sessionStorage or a cookie, so no other script, tab or later visitor of this browser
// can read it, and a reload means logging in again (web/README.md).
//
// Every answer's degradation headers (X-Continuum-Degraded, Retry-After,
// X-Continuum-Data-As-Of, Age) are recorded per feature area, and the banners
// (components.tsx) say what they mean.

export type Role = "patient" | "provider" | "auditor" | "operator";

export interface Session {
  token: string;
  role: Role;
  username: string;
  patient?: string;
  practitioner?: string;
  idleTimeoutS: number;
  expiresAt: number; // ms since the epoch
}

export type Area = "records" | "scheduling" | "messages" | "billing" | "articles";

export interface Degradation {
  mode: string; // read-only | queued | stale | unavailable | busy
  retryAfterS?: number;
  dataAsOf?: string;
  ageS?: number;
  at: number; // when it was seen (ms)
  detail?: string;
}

let session: Session | null = null;
let lastActivity = Date.now();
const degraded = new Map<Area, Degradation>();
const listeners = new Set<() => void>();

export function currentSession(): Session | null {
  return session;
}
export function lastApiActivity(): number {
  return lastActivity;
}
export function subscribe(f: () => void): () => void {
  listeners.add(f);
  return () => listeners.delete(f);
}
function notify() {
  for (const f of listeners) f();
}
export function degradation(area: Area): Degradation | undefined {
  return degraded.get(area);
}
export function setDegradation(area: Area, d: Degradation | undefined) {
  if (d) degraded.set(area, d);
  else degraded.delete(area);
  notify();
}

// A failed call: what happened, in words for the person using the page.
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly retryAfterS?: number,
    readonly mode?: string,
    readonly body?: unknown,
  ) {
    super(message);
  }
}

export interface ApiResult<T> {
  status: number;
  data: T;
  headers: Headers;
}

function outcomeText(body: unknown): string | undefined {
  if (body && typeof body === "object") {
    const o = body as { issue?: { diagnostics?: string; details?: { text?: string } }[] };
    const i = o.issue?.[0];
    return i?.diagnostics ?? i?.details?.text;
  }
  return undefined;
}

function genericMessage(status: number, retry?: number): string {
  const later = retry ? ` Please try again in ${retry} seconds.` : " Please try again in a moment.";
  if (status === 0) return "Your browser could not reach Continuum. Check your connection and try again.";
  if (status === 401) return "Your session has ended. Please log in again.";
  if (status === 403) return "You are not allowed to do that.";
  if (status === 404) return "That was not found.";
  if (status === 429) return "Too many attempts." + later;
  if (status >= 500) return "Continuum could not complete this right now." + later;
  return "The request was not accepted.";
}

let onSessionEnded: (why: string) => void = () => {};
export function onSessionEnd(f: (why: string) => void) {
  onSessionEnded = f;
}

export function newIdempotencyKey(prefix: string): string {
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  return prefix + "-" + Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

export interface CallOptions {
  method?: string;
  body?: unknown;
  headers?: Record<string, string>;
  area?: Area;
  idempotencyKey?: string;
}

// One API call. Resolves with 2xx answers (202 included); rejects with ApiError.
export async function api<T>(path: string, opts: CallOptions = {}): Promise<ApiResult<T>> {
  const headers: Record<string, string> = { Accept: "application/fhir+json, application/json" };
  if (session) headers["Authorization"] = `Bearer ${session.token}`;
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  if (opts.idempotencyKey) headers["Idempotency-Key"] = opts.idempotencyKey;
  Object.assign(headers, opts.headers ?? {});
  let res: Response;
  try {
    res = await fetch(path, {
      method: opts.method ?? "GET",
      headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, genericMessage(0));
  }
  if (session) lastActivity = Date.now();
  const text = await res.text();
  let body: unknown = undefined;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  const mode = res.headers.get("X-Continuum-Degraded") ?? undefined;
  const retry = Number(res.headers.get("Retry-After") ?? "") || undefined;
  const asOf = res.headers.get("X-Continuum-Data-As-Of") ?? undefined;
  const age = Number(res.headers.get("Age") ?? "") || undefined;
  if (opts.area) {
    if (mode || (res.status === 503 && opts.area)) {
      setDegradation(opts.area, {
        mode: mode ?? "unavailable",
        retryAfterS: retry,
        dataAsOf: asOf,
        ageS: age,
        at: Date.now(),
        detail: outcomeText(body),
      });
    } else if (res.ok && (opts.method ?? "GET") === "GET") {
      const prev = degraded.get(opts.area);
      // A good read clears a read's banner; a write's read-only banner stays until a
      // write succeeds (reads keep working while writes cannot).
      if (prev && (prev.mode !== "read-only" || asOf)) setDegradation(opts.area, undefined);
      if (asOf) setDegradation(opts.area, { mode: "as-of", dataAsOf: asOf, at: Date.now() });
    } else if (res.ok) {
      if (degraded.get(opts.area)?.mode === "read-only") setDegradation(opts.area, undefined);
    }
  }
  if (res.status === 401 && session) {
    session = null;
    onSessionEnded("Your session has ended (logged out elsewhere or timed out). Please log in again.");
  }
  if (!res.ok) {
    let message = outcomeText(body);
    if (message && res.status >= 500 && !/try again|retry/i.test(message))
      message += retry ? ` Please try again in ${retry} seconds.` : " Please try again in a moment.";
    throw new ApiError(
      res.status,
      message ?? genericMessage(res.status, retry),
      retry,
      mode,
      body,
    );
  }
  return { status: res.status, data: body as T, headers: res.headers };
}

interface TokenResponse {
  access_token: string;
  expires_in: number;
  idle_timeout: number;
  patient?: string;
  practitioner?: string;
  scope: string;
}

function roleOf(t: TokenResponse): Role {
  if (t.patient) return "patient";
  if (t.practitioner) return "provider";
  return "auditor";
}

export async function login(username: string, password: string, totp?: string): Promise<Session> {
  const body: Record<string, string> = { username, password };
  if (totp) body.totp = totp;
  const r = await api<TokenResponse>("/api/v1/session", { method: "POST", body });
  const t = r.data;
  session = {
    token: t.access_token,
    role: roleOf(t),
    username,
    patient: t.patient,
    practitioner: t.practitioner,
    idleTimeoutS: t.idle_timeout,
    expiresAt: Date.now() + t.expires_in * 1000,
  };
  lastActivity = Date.now();
  degraded.clear();
  notify();
  return session;
}

// An operator: the node's ops token (`[ops] token_file`), held like a session token (in
// memory only). It is checked against /api/v1/ops/status before it is kept.
export async function loginOps(token: string): Promise<Session> {
  const res = await fetch("/api/v1/ops/status", {
    headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
    credentials: "omit",
    cache: "no-store",
  }).catch(() => null);
  if (!res) throw new ApiError(0, genericMessage(0));
  if (!res.ok)
    throw new ApiError(res.status, res.status === 401 || res.status === 403 ? "That is not this node's ops token." : genericMessage(res.status));
  session = { token, role: "operator", username: "operator", idleTimeoutS: 0, expiresAt: Infinity };
  lastActivity = Date.now();
  degraded.clear();
  notify();
  return session;
}

export async function logout(): Promise<void> {
  if (!session) return;
  if (session.role === "operator") return forget(); // a token, not a session: nothing to revoke
  try {
    await api("/api/v1/session", { method: "DELETE" });
  } finally {
    session = null;
    degraded.clear();
    notify();
  }
}

// Drops the session without calling the server (it already ended there).
export function forget() {
  session = null;
  degraded.clear();
  notify();
}
