import { useEffect, useState } from "preact/hooks";
import { ApiError, api } from "../api";
import { ErrorNote, Loading, Section } from "../components";
import { fmtDateTime, fmtTime } from "../fhir";

// The dashboard's charts (GET /api/v1/ops/series): request rate, 5xx rate and p99 latency
// per tier over time, from the cluster's Prometheus through this node (one origin: the
// CSP's connect-src 'self'). Drawn as SVG by hand: no chart library in the bundle.

interface Series { name: string; points: [number, number | null][] }
interface Chart { chart: string; title: string; unit: string; step_s: number; series: Series[] }

const CHARTS = ["requests", "errors", "latency"] as const;
const SPANS = [
  { minutes: 15, label: "15 minutes" },
  { minutes: 60, label: "1 hour" },
  { minutes: 360, label: "6 hours" },
];
const REFRESH_S = 15;
const W = 400;
const H = 170;
const PAD_L = 44;
const PAD_B = 22;

function fmtValue(v: number, unit: string): string {
  const n = Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
  return `${n} ${unit}`;
}

function latest(s: Series): number | null {
  for (let i = s.points.length - 1; i >= 0; i--) if (s.points[i][1] !== null) return s.points[i][1];
  return null;
}

const iso = (t: number) => new Date(t * 1000).toISOString();

// A line per tier over the whole span asked for (so a new cluster's few minutes show as
// such); a null point (no requests, or no answer) breaks the line, and a point with no
// neighbour is drawn as a dot.
function Plot({ c, minutes }: { c: Chart; minutes: number }) {
  const all = c.series.flatMap((s) => s.points);
  if (all.length === 0) return <p class="hint">No data in this span yet.</p>;
  const t1 = Math.max(Date.now() / 1000, ...all.map((p) => p[0]));
  const t0 = Math.min(t1 - minutes * 60, ...all.map((p) => p[0]));
  const vmax = Math.max(1e-9, ...all.map((p) => p[1] ?? 0));
  const top = vmax * 1.1;
  const x = (t: number) => PAD_L + ((t - t0) / Math.max(1, t1 - t0)) * (W - PAD_L - 4);
  const y = (v: number) => 4 + (1 - v / top) * (H - PAD_B - 8);
  const paths = c.series.map((s) => {
    let d = "";
    const dots: [number, number][] = [];
    const pts = s.points;
    for (let i = 0; i < pts.length; i++) {
      const v = pts[i][1];
      if (v === null) continue;
      const joined = i > 0 && pts[i - 1][1] !== null;
      d += `${joined ? "L" : "M"}${x(pts[i][0]).toFixed(1)},${y(v).toFixed(1)} `;
      if (!joined && (i + 1 >= pts.length || pts[i + 1][1] === null)) dots.push([x(pts[i][0]), y(v)]);
    }
    return { name: s.name, d, dots };
  });
  const titleId = `chart-${c.chart}-title`;
  return (
    <svg class="chart" viewBox={`0 0 ${W} ${H}`} role="img" aria-labelledby={titleId} data-chart-points={all.length}>
      <title id={titleId}>{`${c.title}, ${fmtDateTime(iso(t0))} to ${fmtDateTime(iso(t1))}; highest ${fmtValue(vmax, c.unit)}`}</title>
      <line class="axis" x1={PAD_L} y1={H - PAD_B} x2={W} y2={H - PAD_B} />
      <line class="axis" x1={PAD_L} y1={0} x2={PAD_L} y2={H - PAD_B} />
      <text class="tick" x={PAD_L - 4} y={y(vmax) + 4} text-anchor="end">{fmtValue(vmax, "")}</text>
      <text class="tick" x={PAD_L - 4} y={H - PAD_B} text-anchor="end">0</text>
      <text class="tick" x={PAD_L} y={H - 4}>{fmtTime(iso(t0))}</text>
      <text class="tick" x={W - 2} y={H - 4} text-anchor="end">{fmtTime(iso(t1))}</text>
      {paths.map((p) => (
        <g key={p.name} class={`s-${p.name}`}>
          <path class="line" d={p.d} />
          {p.dots.map(([cx, cy]) => <circle key={cx} class="dot" cx={cx.toFixed(1)} cy={cy.toFixed(1)} r="2.5" />)}
        </g>
      ))}
    </svg>
  );
}

function ChartCard({ c, minutes }: { c: Chart; minutes: number }) {
  return (
    <figure class="chart-card" data-chart={c.chart}>
      <figcaption><strong>{c.title}</strong> <span class="hint">(all nodes; a point every {c.step_s} s)</span></figcaption>
      <Plot c={c} minutes={minutes} />
      <ul class="legend">
        {c.series.map((s) => {
          const v = latest(s);
          return (
            <li key={s.name} data-series={s.name}>
              <span class={`swatch s-${s.name}`} aria-hidden="true" />
              {s.name}: {v === null ? "no requests" : `now ${fmtValue(v, c.unit)}`}
            </li>
          );
        })}
      </ul>
    </figure>
  );
}

export function OpsCharts() {
  const [minutes, setMinutes] = useState(15);
  const [charts, setCharts] = useState<Record<string, Chart>>({});
  const [error, setError] = useState<string | null>(null);
  const [unavailable, setUnavailable] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  useEffect(() => {
    let live = true;
    let t = 0;
    setLoading(true);
    const load = async () => {
      const got: Record<string, Chart> = {};
      let err: string | null = null;
      let none: string | null = null;
      await Promise.all(CHARTS.map(async (name) => {
        try {
          got[name] = (await api<Chart>(`/api/v1/ops/series?chart=${name}&minutes=${minutes}`)).data;
        } catch (e) {
          if (e instanceof ApiError && e.status === 501) none = e.message;
          else err = `The ${name} chart could not be read: ${(e as Error).message}`;
        }
      }));
      if (!live) return;
      setCharts((old) => ({ ...old, ...got }));
      setError(err);
      setUnavailable(none);
      setLoading(false);
      t = window.setTimeout(load, REFRESH_S * 1000);
    };
    void load();
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [minutes]);
  return (
    <Section title="Traffic over time" id="h-charts">
      <fieldset class="span-picker">
        <legend class="hint">Span</legend>
        {SPANS.map((s) => (
          <label key={s.minutes} class="inline">
            <input type="radio" name="chart-span" value={s.minutes} checked={minutes === s.minutes}
              onChange={() => setMinutes(s.minutes)} />
            {s.label}
          </label>
        ))}
      </fieldset>
      {unavailable && <p data-charts-unavailable>{unavailable}</p>}
      <ErrorNote error={error} />
      {loading && Object.keys(charts).length === 0 && !unavailable && <Loading what="the charts" />}
      <div class="charts">
        {!unavailable && CHARTS.filter((n) => charts[n]).map((n) => <ChartCard key={n} c={charts[n]} minutes={minutes} />)}
      </div>
    </Section>
  );
}

// ---- rollout and chaos reports (GET /api/v1/ops/reports[/{kind}/{id}])

interface ReportRow { kind: string; id: string; title: string; outcome: string; started_at: string; ended_at: string | null; updated_at: string }
interface Judgement { at: number; percent: number; verdict: string; line?: string }
interface ReportFull extends ReportRow { text: string; report: { judgements?: Judgement[] } }

const KIND_LABEL: Record<string, string> = { rollout: "Rollout", "chaos-run": "Chaos experiment", "chaos-day": "Chaos day" };

function good(r: ReportRow): boolean | null {
  if (!r.ended_at) return null;
  return /^(done|hypothesis held|targets met)/.test(r.outcome);
}

function ReportDetail({ kind, id }: { kind: string; id: string }) {
  const [r, setR] = useState<ReportFull | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    api<ReportFull>(`/api/v1/ops/reports/${encodeURIComponent(kind)}/${encodeURIComponent(id)}`)
      .then((x) => live && setR(x.data))
      .catch((e) => live && setError(`The report could not be read: ${(e as Error).message}`));
    return () => { live = false; };
  }, [kind, id]);
  if (error) return <ErrorNote error={error} />;
  if (!r) return <Loading what="the report" />;
  const decisions = (r.report.judgements ?? []).slice(-15).reverse();
  return (
    <div class="report" data-report-detail={id}>
      {decisions.length > 0 && (
        <table>
          <caption class="hint">The judge's latest decisions (newest first)</caption>
          <thead><tr><th scope="col">When</th><th scope="col">Step</th><th scope="col">Verdict</th><th scope="col">Numbers</th></tr></thead>
          <tbody>
            {decisions.map((j) => (
              <tr key={j.at} data-verdict={j.verdict}>
                <td>{fmtDateTime(new Date(j.at * 1000).toISOString())}</td>
                <td>{j.percent}%</td>
                <td>{j.verdict}</td>
                <td class="mono">{j.line ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <pre class="report-text" tabIndex={0} aria-label={`Report ${r.id}`}>{r.text}</pre>
    </div>
  );
}

export function OpsReports() {
  const [rows, setRows] = useState<ReportRow[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  useEffect(() => {
    let live = true;
    let t = 0;
    const load = async () => {
      try {
        const r = await api<ReportRow[]>("/api/v1/ops/reports?limit=20");
        if (live) { setRows(r.data); setError(null); }
      } catch (e) {
        if (live) setError(`Reports could not be read: ${(e as Error).message}`);
      }
      if (live) t = window.setTimeout(load, 5000);
    };
    void load();
    return () => { live = false; clearTimeout(t); };
  }, []);
  const running = (rows ?? []).filter((r) => r.kind === "rollout" && !r.ended_at);
  return (
    <Section title="Rollouts and chaos practice" id="h-reports">
      <ErrorNote error={error} />
      {rows === null && !error && <Loading what="the reports" />}
      {running.map((r) => (
        <div key={r.id} class="banner banner-info" role="status" data-rollout-running={r.id}>
          Rollout in progress: {r.title}, {r.outcome}.
        </div>
      ))}
      {rows && rows.length === 0 && <p>No rollout or chaos experiment has reported yet (scripts/cluster rollout, continuum chaos run).</p>}
      {rows && rows.length > 0 && (
        <ul class="list">
          {rows.map((r) => {
            const key = `${r.kind}/${r.id}`;
            const g = good(r);
            return (
              <li key={key} data-report={r.id} data-kind={r.kind}>
                <strong>{KIND_LABEL[r.kind] ?? r.kind}</strong> {r.title}{" "}
                <span class={`tag ${g === null ? "" : g ? "ok" : "bad"}`}>{r.outcome}</span>
                <div class="hint">
                  started {fmtDateTime(r.started_at)}{r.ended_at ? `, ended ${fmtDateTime(r.ended_at)}` : ", running"}
                </div>
                <button type="button" class="secondary" aria-expanded={open === key}
                  onClick={() => setOpen(open === key ? null : key)}>
                  {open === key ? "Hide report" : "Show report"}<span class="sr-only"> {r.id}</span>
                </button>
                {open === key && <ReportDetail kind={r.kind} id={r.id} />}
              </li>
            );
          })}
        </ul>
      )}
    </Section>
  );
}
