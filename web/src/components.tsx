import type { ComponentChildren } from "preact";
import { useEffect, useState } from "preact/hooks";
import { type Area, type Degradation, ApiError, degradation, subscribe } from "./api";
import { fmtTime } from "./fhir";

// Re-renders when any degradation changes.
export function useDegradation(area: Area): Degradation | undefined {
  const [, tick] = useState(0);
  useEffect(() => subscribe(() => tick((n) => n + 1)), []);
  return degradation(area);
}

function retry(d: Degradation): string {
  return d.retryAfterS ? ` Try again in about ${d.retryAfterS} seconds.` : "";
}

function ago(s: number): string {
  if (s < 90) return `${Math.max(1, Math.round(s))} seconds ago`;
  if (s < 5400) return `${Math.round(s / 60)} minutes ago`;
  return `${Math.round(s / 3600)} hours ago`;
}

// What still works, in plain words, for each area and degraded mode.
export function bannerText(area: Area, d: Degradation): { text: string; severity: "info" | "warn" } | null {
  switch (area) {
    case "records":
      if (d.mode === "stale")
        return {
          text: `Records as of ${fmtTime(d.dataAsOf)} (the hospital system is not answering). Newer results may be missing.`,
          severity: "warn",
        };
      if (d.mode === "as-of") return { text: `Records as of ${fmtTime(d.dataAsOf)}.`, severity: "info" };
      return {
        text: `Your records cannot be reached right now.${retry(d)} Nothing you saved is lost.`,
        severity: "warn",
      };
    case "scheduling":
      if (d.mode === "read-only")
        return {
          text: `Scheduling is read-only right now; you can still see your appointments. Booking and cancelling are paused.${retry(d)}`,
          severity: "warn",
        };
      return { text: `Scheduling is not available right now.${retry(d)}`, severity: "warn" };
    case "messages":
      if (d.mode === "read-only")
        return {
          text: `Messaging is read-only right now; you can still read your messages, but sending is paused.${retry(d)}`,
          severity: "warn",
        };
      return { text: `Messages are not available right now.${retry(d)}`, severity: "warn" };
    case "billing":
      if (d.mode === "queued")
        return {
          text: "Your payment is queued: the payment service is not answering right now. It will be processed once, automatically, when the service returns; this page shows the outcome.",
          severity: "warn",
        };
      return { text: `Billing is not available right now.${retry(d)}`, severity: "warn" };
    case "articles":
      if (d.mode === "stale")
        return {
          text: `Showing articles from ${ago(d.ageS ?? 0)}: the library is not answering, so they may not be the newest.`,
          severity: "warn",
        };
      return { text: `Health articles are not available right now.${retry(d)}`, severity: "warn" };
  }
}

export function DegradedBanner({ area }: { area: Area }) {
  const d = useDegradation(area);
  if (!d) return null;
  const b = bannerText(area, d);
  if (!b) return null;
  return (
    <div class={`banner banner-${b.severity}`} role="status" data-degraded={d.mode} data-area={area}>
      {b.text}
    </div>
  );
}

export function ErrorNote({ error, onRetry }: { error: string | null; onRetry?: () => void }) {
  if (!error) return null;
  return (
    <div class="error" role="alert">
      <p>{error}</p>
      {onRetry && (
        <button type="button" class="secondary" onClick={onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="loading" role="status" aria-live="polite">
      Loading {what}…
    </p>
  );
}

export function Section({ title, children, id }: { title: string; children: ComponentChildren; id?: string }) {
  return (
    <section class="card" aria-labelledby={id}>
      <h2 id={id}>{title}</h2>
      {children}
    </section>
  );
}

// Loads once (and again on `reload()`), with loading and error states.
export function useLoad<T>(load: () => Promise<T>, deps: unknown[] = []) {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [status, setStatus] = useState<number | null>(null); // the failed call's HTTP status
  const [loading, setLoading] = useState(true);
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    setLoading(true);
    setError(null);
    setStatus(null);
    load()
      .then((d) => live && setData(d))
      .catch((e: unknown) => {
        if (!live) return;
        setError(e instanceof Error ? e.message : String(e));
        setStatus(e instanceof ApiError ? e.status : null);
      })
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
  }, [...deps, n]);
  return { data, error, status, loading, reload: () => setN((x) => x + 1), setData };
}
