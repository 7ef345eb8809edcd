"""The readable report of a chaos run or a chaos day, as one self-contained HTML file
(no script, no external style, fonts or images: it opens from a mail attachment or a CI
artefact as it is).

For the day: the targets (met or missed, and why), the day's ledger of acknowledged
writes, a row per experiment, and for each experiment its timeline: one bar per
hypothesis window (height: the critical reads' p99, red where the window broke the
hypothesis, a dot where requests failed), the fault's span shaded, the alert that
detected it marked, then the revert and the recovery. Pure functions of the result
dicts that chaos.run and chaos.day save; unit-tested in ops/tests/test_chaos.py.
"""

from __future__ import annotations

import time
from html import escape

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:70rem;padding:0 1rem;color:#1b1f24}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2.2rem;border-top:1px solid #ccd;padding-top:1rem}
table{border-collapse:collapse;margin:.6rem 0}td,th{border:1px solid #ccd;padding:.25rem .5rem;text-align:left}
th{background:#eef1f5}td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#0a6b2d;font-weight:600}.bad{color:#b00020;font-weight:600}.muted{color:#555}
svg{display:block;margin:.4rem 0;max-width:100%;height:auto}
"""


def _e(v) -> str:
    return escape("" if v is None else str(v))


def _mark(ok: bool, yes: str = "met", no: str = "MISSED") -> str:
    return f'<span class="{"ok" if ok else "bad"}">{yes if ok else no}</span>'


def _num(v, fmt: str = "{:g}") -> str:
    return "?" if v is None else fmt.format(v)


def _windows(r: dict) -> list[tuple[str, dict]]:
    """Every hypothesis window of a run in order, tagged before / step N / revert N / after."""
    out: list[tuple[str, dict]] = []
    for w in (r.get("before") or {}).get("windows", []):
        out.append(("before", w))
    for i, s in enumerate(r.get("steps") or [], 1):
        for w in (s.get("during") or {}).get("windows", []):
            out.append((f"step {i}", w))
        for w in s.get("recovery") or []:
            out.append((f"recovery {i}", w))
    for w in (r.get("after") or {}).get("windows", []):
        out.append(("after", w))
    return out


def timeline_svg(r: dict, width: int = 900, height: int = 140) -> str:
    """One bar per window on the run's own clock (the windows' monotonic t0/t1)."""
    ws = _windows(r)
    if not ws:
        return '<p class="muted">no hypothesis windows recorded</p>'
    t_lo = min(w["t0"] for _, w in ws)
    t_hi = max(w["t1"] for _, w in ws)
    span = max(t_hi - t_lo, 1e-6)
    top = max([w["p99_ms"] or 0 for _, w in ws] + [1.0])
    plot_h = height - 30

    def x(t: float) -> float:
        return 40 + (t - t_lo) / span * (width - 50)

    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" aria-labelledby="t-{_e(r.get("id"))}">',
             f'<title id="t-{_e(r.get("id"))}">{_e(r.get("title"))}: {len(ws)} windows over {span:.0f} s; '
             f'{sum(1 for _, w in ws if not w["ok"])} broke the hypothesis; p99 up to {top:.0f} ms</title>']
    for i, s in enumerate(r.get("steps") or [], 1):
        during = (s.get("during") or {}).get("windows", [])
        if during:
            a, b = x(during[0]["t0"]), x(during[-1]["t1"])
            parts.append(f'<rect x="{a:.1f}" y="0" width="{max(b - a, 1):.1f}" height="{plot_h}" fill="#fde9c8"/>')
            parts.append(f'<text x="{a + 3:.1f}" y="12" font-size="11">fault {i}: {_e(s.get("fault"))}</text>')
            det = s.get("detected")
            if det and det.get("after_s") is not None:
                dx = x(during[0]["t0"] + det["after_s"])
                if dx <= width:
                    parts.append(f'<line x1="{dx:.1f}" x2="{dx:.1f}" y1="0" y2="{plot_h}" stroke="#5b3cc4" '
                                 f'stroke-dasharray="3,2"/><text x="{dx + 3:.1f}" y="24" font-size="11" '
                                 f'fill="#5b3cc4">{_e(det.get("alert"))} {det["after_s"]:g}s</text>')
    for _, w in ws:
        a, b = x(w["t0"]), x(w["t1"])
        # a window with no answers at all (a stall) has no p99: drawn full height
        h = (plot_h - 30) if w["p99_ms"] is None and not w["ok"] else (w["p99_ms"] or 0) / top * (plot_h - 30)
        color = "#2e7d32" if w["ok"] else "#c62828"
        parts.append(f'<rect x="{a:.1f}" y="{plot_h - h:.1f}" width="{max(b - a - 1, 1):.1f}" height="{h:.1f}" '
                     f'fill="{color}"><title>{w["requests"]} answers, {w["failed"]} failed, p99 '
                     f'{_num(w["p99_ms"], "{:.0f}")} ms{(": " + _e(w.get("why"))) if w.get("why") else ""}</title></rect>')
        if w["failed"]:
            parts.append(f'<circle cx="{(a + b) / 2:.1f}" cy="{plot_h + 8}" r="3" fill="#c62828"/>')
    parts.append(f'<line x1="40" x2="{width - 10}" y1="{plot_h}" y2="{plot_h}" stroke="#888"/>')
    parts.append(f'<text x="0" y="{plot_h - (plot_h - 30) + 4}" font-size="11">{top:.0f} ms</text>')
    parts.append(f'<text x="0" y="{plot_h + 4}" font-size="11">0</text>')
    parts.append(f'<text x="40" y="{height - 4}" font-size="11">0 s</text>'
                 f'<text x="{width - 50}" y="{height - 4}" font-size="11">{span:.0f} s</text>')
    parts.append("</svg>")
    return "".join(parts)


def experiment_section(r: dict) -> str:
    ld, w = r.get("load") or {}, r.get("writes") or {}
    out = [f'<h2 id="{_e(r.get("id"))}">{_e(r.get("title"))}</h2>',
           f'<p>Hypothesis {_mark(bool(r.get("held")), "held", "BROKEN")}'
           + (f'; aborted: {_e(r["aborted"])}' if r.get("aborted") else "") + "</p>"]
    if r.get("replayed"):
        out.append(f'<p>Reverted first (left by an earlier run): {_e(", ".join(r["replayed"]))}</p>')
    out.append(timeline_svg(r))
    out.append('<p class="muted">Bars: the critical reads\' p99 per hypothesis window (green held, red broke it; '
               'a red dot: failed requests). Shaded: the fault. Dashed: the alert that detected it.</p>')
    rows = []
    for i, s in enumerate(r.get("steps") or [], 1):
        det = s.get("detected")
        during = (s.get("during") or {}).get("windows", [])
        rows.append(
            f'<tr><td>{i}</td><td>{_e(s.get("describe"))}</td><td>{_mark(bool(s.get("held")), "held", "BROKEN")}'
            + (f'<br>{_e(s["aborted"])}' if s.get("aborted") else "") + "</td>"
            f'<td class="n">{sum(x["requests"] for x in during)}</td><td class="n">{sum(x["failed"] for x in during)}</td>'
            f'<td>{_e(det["alert"]) + " after " + _num(det["after_s"]) + " s" if det else "no alert matched"}</td>'
            f'<td class="n">{_num(s.get("revert_s"))}</td>'
            f'<td class="n">{_num(s.get("recovered_after_revert_s"))}</td></tr>')
    if rows:
        out.append("<table><tr><th>#</th><th>fault</th><th>hypothesis</th><th>answers</th><th>failed</th>"
                   "<th>detected</th><th>revert s</th><th>held again after s</th></tr>" + "".join(rows) + "</table>")
    retries = ld.get("client_retries", 0)
    out.append(f'<p>Load: {_e(ld.get("sent", 0))} requests, {_e(ld.get("failed", 0))} failed'
               + (f' (clients resend up to {retries}×: {_e(ld.get("retried", 0))} resent; without that '
                  f'{_e(ld.get("failed_without_client_retries", 0))} would have failed)' if retries else " (no client retries)")
               + f'; longest stall: reads {_num(ld.get("read_stall_s"), "{:.2f}")} s, writes '
               f'{_num(ld.get("write_stall_s"), "{:.2f}")} s.</p>')
    a = r.get("audit")
    if a:
        cls = ' class="bad"' if a.get("missing") or a.get("error") else ""
        out.append(f"<p{cls}>Audit: {_e(chaos_audit_line(a))}.</p>")
    if ld.get("tiers"):
        out.append(tiers_table(ld["tiers"], r.get("tiers_after_failed")))
    if w.get("error"):
        out.append(f'<p class="bad">Writes could not be checked: {_e(w["error"])}</p>')
    else:
        out.append(f'<p>Writes: {_e(w.get("acked_writes", "?"))} acknowledged, lost {_e(w.get("lost", "?"))}, '
                   f'duplicated {_e(w.get("duplicates", "?"))}, wrong ids {_e(w.get("wrong_ids", "?"))}.</p>')
    return "\n".join(out)


def chaos_audit_line(a: dict) -> str:
    from .chaos import audit_line   # chaos imports this module
    return audit_line(a)


def chaos_verify_line(v: dict) -> str:
    from .chaos import verify_line
    return verify_line(v)


def tiers_table(tiers: dict, after: dict | None) -> str:
    """The other tiers' clients (high, medium, low: never in the critical figures above):
    answers, failures by kind, longest stall, and failures once the fault was reverted."""
    rows = []
    for t, x in tiers.items():
        kinds = ", ".join(f"{k} ×{v}" for k, v in sorted((x.get("failed_by_kind") or {}).items()))
        back = "-" if after is None else (_mark(not after.get(t), "none", str(after.get(t))))
        rows.append(f'<tr><td>{_e(t)}</td><td class="n">{_e(x.get("sent", 0))}</td>'
                    f'<td class="n">{_e(x.get("failed", 0))}</td><td>{_e(kinds)}</td>'
                    f'<td class="n">{_num(x.get("stall_s"), "{:.2f}")}</td><td>{back}</td></tr>')
    return ("<table><tr><th>tier</th><th>requests</th><th>failed</th><th>failures</th>"
            "<th>longest stall s</th><th>failed after the revert</th></tr>" + "".join(rows) + "</table>")


def _detail(v) -> str:
    """A target's detail: {experiment: what} as lines, anything else as text."""
    if isinstance(v, dict):
        return "<br>".join(f"{_e(k)}: {_e(x)}" for k, x in v.items())
    return _e(v or "")


def _page(title: str, body: list[str]) -> str:
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def _when(t) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t)) if isinstance(t, (int, float)) else "?"


def run_html(r: dict) -> str:
    return _page(f"chaos run {r.get('id')}", [f"<h1>Chaos run {_e(r.get('id'))}</h1>",
                                              f"<p class=\"muted\">{_e(_when(r.get('started')))} to "
                                              f"{_e(_when(r.get('finished')))}</p>", experiment_section(r)])


def day_html(d: dict, results: list[dict]) -> str:
    s = d["summary"]
    body = [f"<h1>Chaos day {_e(d.get('id'))}</h1>",
            f'<p class="muted">{_e(_when(d.get("started")))} to {_e(_when(d.get("finished")))}; '
            f'{len(s["experiments"])} experiment(s) under one steady load</p>',
            f'<p>Targets: {_mark(bool(s["met"]), "ALL MET", "MISSED")}. {_e(s["requests"])} requests, '
            f'{_e(s["failed"])} failed ({_e(s["failed_without_client_retries"])} without client retries); '
            f'median time to detect {_num(s.get("median_time_to_detect_s"))} s.</p>',
            "<table><tr><th>target</th><th>result</th><th>detail</th></tr>"
            + "".join(f"<tr><td>{_e(name)}</td><td>{_mark(bool(t['met']))}</td><td>{_detail(t['detail'])}</td></tr>"
                      for name, t in s["targets"].items()) + "</table>"]
    w = d.get("writes") or {}
    if w:
        body.append(f"<p>The day's ledger: {_e(w.get('acked_writes', '?'))} acknowledged writes, lost "
                    f"{_e(w.get('lost', '?'))}, duplicated {_e(w.get('duplicates', '?'))}, wrong ids "
                    f"{_e(w.get('wrong_ids', '?'))}"
                    + (f"; <span class=\"bad\">check failed: {_e(w['error'])}</span>" if w.get("error") else "")
                    + ".</p>")
    a, v = d.get("audit"), d.get("audit_verify")
    if a:
        body.append(f"<p>The day's audit: {_e(chaos_audit_line(a))}.</p>")
    if v:
        cls = "" if v.get("ok") else ' class="bad"'
        body.append(f"<p{cls}>audit verify: {_e(chaos_verify_line(v))}</p>")
    rows = []
    for x in s["experiments"]:
        rows.append(f'<tr><td><a href="#{_e(x["id"])}">{_e(x["title"])}</a></td>'
                    f'<td>{_mark(x["held"], "held", "BROKEN")}</td><td class="n">{_e(x["requests"])}</td>'
                    f'<td class="n">{_e(x["failed"])}</td><td class="n">{_e(_num(x["lost"]))}</td>'
                    f'<td class="n">{_e(_num(x["duplicates"]))}</td>'
                    f'<td class="n">{_e(", ".join(f"{v:g}" for v in x["detected_after_s"]) or "-")}</td>'
                    f'<td class="n">{_e(", ".join("-" if v is None else f"{v:g}" for v in x["recovered_after_revert_s"]) or "-")}</td></tr>')
    body.append("<table><tr><th>experiment</th><th>hypothesis</th><th>requests</th><th>failed</th><th>lost</th>"
                "<th>dup</th><th>detected after s</th><th>held again after s</th></tr>" + "".join(rows) + "</table>")
    for name, why in (d.get("skipped") or {}).items():
        body.append(f"<p class=\"muted\">Skipped {_e(name)}: {_e(why)}</p>")
    body += [experiment_section(r) for r in results]
    return _page(f"chaos day {d.get('id')}", body)
