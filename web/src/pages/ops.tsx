import { useEffect, useState } from "preact/hooks";
import { api } from "../api";
import { ErrorNote, Loading, Section } from "../components";
import { fmtDateTime } from "../fhir";
import { OpsCharts, OpsReports } from "./ops_charts";

interface Tier { mode: string; pool_open: number; pool_in_use: number; pool_waiting: number }
interface Dependency { state: string; breaker: string; last_error: string; fallback: string; fallback_in_effect: boolean }
interface Member { region: string; local: boolean; reachable: boolean; role: string; lag_ms: number; error: string }
interface Journey { journey: string; vantage: string; target: string; finished_at: string; success: boolean; failed_step: string | null; error: string | null; age_s: number }
interface Alert { alertname: string; severity: string; status: string; starts_at: string; annotations?: { summary?: string; description?: string } }
interface Status {
  status: string;
  node: string;
  region: string;
  version: string;
  database: { reachable: boolean | { unavailable: string }; error?: string; primary_known?: boolean; members?: Member[] };
  audit: { healthy: boolean; pending: number; stalled: boolean };
  tiers: Record<string, Tier>;
  dependencies: Record<string, Dependency>;
  alerts: Alert[] | { unavailable: string };
  journeys: Journey[] | { unavailable: string };
}

const REFRESH_S = 5;

function Flag({ ok, yes, no }: { ok: boolean; yes: string; no: string }) {
  return <span class={`tag ${ok ? "ok" : "bad"}`}>{ok ? yes : no}</span>;
}

// The operations view (/api/v1/ops/status): this node, the regions' databases, each
// tier's mode, each dependency's breaker and fallback, the last journeys, firing alerts.
export function Ops() {
  const [s, setS] = useState<Status | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [at, setAt] = useState<number>(0);
  useEffect(() => {
    let live = true;
    let t = 0;
    const load = async () => {
      try {
        const r = await api<Status>("/api/v1/ops/status");
        if (!live) return;
        setS(r.data);
        setError(null);
        setAt(Date.now());
      } catch (e) {
        if (live) setError(`The status could not be read: ${(e as Error).message} Showing the last one.`);
      }
      if (live) t = window.setTimeout(load, REFRESH_S * 1000);
    };
    void load();
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, []);
  if (!s) return <><h1>Operations</h1><ErrorNote error={error} />{!error && <Loading what="the status" />}</>;
  const journeys = Array.isArray(s.journeys) ? s.journeys : null;
  const alerts = Array.isArray(s.alerts) ? s.alerts : null;
  const degradedTiers = Object.entries(s.tiers).filter(([, t]) => t.mode !== "normal");
  return (
    <>
      <h1>Operations</h1>
      <p class="hint" aria-live="polite">
        Node {s.node} in {s.region}, release {s.version}; updated {fmtDateTime(new Date(at).toISOString())}, every {REFRESH_S} s.
      </p>
      <ErrorNote error={error} />
      {degradedTiers.length > 0 && (
        <div class="banner banner-warn" role="status" data-ops-degraded>
          Degraded: {degradedTiers.map(([n, t]) => `${n} ${t.mode}`).join(", ")}.
        </div>
      )}
      <div class="grid">
        <Section title="This node" id="h-node">
          <dl class="facts">
            <dt>Status</dt><dd><Flag ok={s.status === "ready"} yes="ready" no={s.status} /></dd>
            <dt>Database</dt><dd><Flag ok={s.database.reachable === true} yes="reachable" no="unreachable" /> {s.database.error}</dd>
            <dt>Audit journal</dt><dd><Flag ok={s.audit.healthy && !s.audit.stalled} yes="healthy" no="impaired" /> {s.audit.pending} pending</dd>
          </dl>
        </Section>
        {s.database.members && (
          <Section title="Regions" id="h-regions">
            <table>
              <caption class="hint">PostgreSQL members as this node sees them</caption>
              <thead><tr><th scope="col">Region</th><th scope="col">Role</th><th scope="col">Lag</th><th scope="col">Reachable</th></tr></thead>
              <tbody>
                {s.database.members.map((m) => (
                  <tr key={m.region}>
                    <th scope="row">{m.region}{m.local ? " (local)" : ""}</th>
                    <td>{m.role}</td>
                    <td>{m.lag_ms >= 0 ? `${m.lag_ms} ms` : "—"}</td>
                    <td><Flag ok={m.reachable} yes="yes" no="no" /> {m.error}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Section>
        )}
        <Section title="Tiers" id="h-tiers">
          <table>
            <thead><tr><th scope="col">Tier</th><th scope="col">Mode</th><th scope="col">Pool in use / open</th><th scope="col">Waiting</th></tr></thead>
            <tbody>
              {Object.entries(s.tiers).map(([name, t]) => (
                <tr key={name} data-tier={name} data-mode={t.mode}>
                  <th scope="row">{name}</th>
                  <td><Flag ok={t.mode === "normal"} yes="normal" no={t.mode} /></td>
                  <td>{t.pool_in_use} / {t.pool_open}</td>
                  <td>{t.pool_waiting}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </Section>
        <Section title="Dependencies" id="h-deps">
          {Object.keys(s.dependencies).length === 0 && <p>No external dependencies configured.</p>}
          <ul class="list">
            {Object.entries(s.dependencies).map(([name, d]) => (
              <li key={name} data-dependency={name} data-breaker={d.breaker}>
                <strong>{name}</strong> <Flag ok={d.state === "healthy"} yes="healthy" no={d.state} />{" "}
                <span class="tag">breaker {d.breaker}</span>
                <div class="hint">Fallback: {d.fallback}{d.fallback_in_effect ? " — in effect now" : ""}</div>
                {d.last_error && <div class="hint">Last error: {d.last_error}</div>}
              </li>
            ))}
          </ul>
        </Section>
        <Section title="Journeys" id="h-journeys">
          {!journeys && <p>Journeys are not available while the database does not answer.</p>}
          {journeys && journeys.length === 0 && <p>No journey runs reported yet (continuum probe reports them).</p>}
          {journeys && journeys.length > 0 && (
            <table>
              <thead><tr><th scope="col">Journey</th><th scope="col">Vantage</th><th scope="col">Result</th><th scope="col">Finished</th></tr></thead>
              <tbody>
                {journeys.map((j) => (
                  <tr key={`${j.journey}/${j.vantage}`}>
                    <th scope="row">{j.journey}</th>
                    <td>{j.vantage}</td>
                    <td><Flag ok={j.success} yes="ok" no={`failed at ${j.failed_step ?? "?"}`} /></td>
                    <td>{j.age_s} s ago</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Section>
        <Section title="Alerts firing" id="h-alerts">
          {!alerts && <p>Alerts are not available while the database does not answer.</p>}
          {alerts && alerts.length === 0 && <p>None.</p>}
          <ul class="list">
            {(alerts ?? []).map((a) => (
              <li key={a.alertname + a.starts_at}>
                <strong>{a.alertname}</strong> <span class="tag">{a.severity}</span>
                <div>{a.annotations?.summary}</div>
                <div class="hint">since {fmtDateTime(a.starts_at)}</div>
              </li>
            ))}
          </ul>
        </Section>
      </div>
      <OpsCharts />
      <OpsReports />
    </>
  );
}
