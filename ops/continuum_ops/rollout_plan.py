"""The rollout's decisions: steps, transitions, HAProxy weights, persisted state, report.

Pure: nothing here starts a process or talks to HAProxy or Prometheus. The controller that
does (to be built on top) runs this loop, one controller per state file:

    state = load_state(path)                      # or new_rollout(...) + save_state(path, state)
    while True:
        obs = Observation(now, nodes={...}, weights={...})   # what exists, what HAProxy has
        state, action = decide(state, obs)
        save_state(path, state)                   # the decision is durable before it is acted on
        if action.kind == "finished": break
        if action.kind == "start_nodes":  make sure each of action.nodes runs (new release, own
                                          port) and is a server of its region's backend at weight
                                          0 (never traffic before it is ready)
        if action.kind == "set_weights":  `set weight <backend>/<server> <w>` for every entry
        if action.kind == "stop_nodes":   drain (set server state drain, wait for in-flight),
                                          stop, remove from HAProxy (del server): a node is gone
                                          when it neither runs nor is a server of a backend
        if action.kind == "judge":        counts over [action.since, now] (errors) and
                                          [action.step_since, now] (latency) from Prometheus,
                                          verdict = judge.judge(...),
                                          state = record_verdict(state, verdict, action.step, now),
                                          save_state(path, state)
        if action.kind == "wait":         sleep until action.until (or an operator's command:
                                          state = operator(state, "advance"|"rollback"|"abort"|"resume", now))

Every action is idempotent and is derived from the saved state and a fresh observation, so a
controller killed at any point resumes by loading the file and calling decide() again: a
weight that was not applied yet is applied again, a node that was not started is started,
a verdict that was not recorded is judged again. `operator(state, "abort", now)` at any
point before the old release's nodes are being stopped takes traffic back to the old release
and stops the new one.

Phases: starting -> step (one per configured percentage; judged at every interval; a FAIL
rolls back at once; a PASS after the step's hold advances; INCONCLUSIVE holds until the
step's max hold, then `on_inconclusive`: pause | advance | rollback) -> promoting (100%:
weights to the new release, an optional soak, then the old release's nodes are drained and
stopped) -> done. rolling_back / aborting: canary weights to 0 and the baseline's weights
back to what they were, then the canary nodes are stopped -> rolled_back / aborted. paused:
the step holds (still judged: a FAIL still rolls back) until an operator says advance,
resume, rollback or abort.

Traffic shares (HAProxy weights 0..256, proportional within a backend's active servers):
see `split` and README.md ("Canary rollouts").
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from . import judge as judge_mod
from .util import write_atomic

MAX_WEIGHT = 256                # HAProxy: weights 0..256
CHASH_POINTS_PER_WEIGHT = 16    # HAProxy's consistent-hash ring: weight x 16 points (BE_WEIGHT_SCALE)
STATE_FORMAT = 1

PHASES = ("starting", "step", "paused", "promoting", "rolling_back", "aborting", "done", "rolled_back", "aborted")
TERMINAL = ("done", "rolled_back", "aborted")
ON_INCONCLUSIVE = ("pause", "advance", "rollback")
COMMANDS = ("advance", "resume", "rollback", "abort")

DEFAULT_STEPS = "1:30m,5:5m,25:5m,50:5m,100"


class StateError(ValueError):
    """The rollout state file cannot be used (corrupt, another format, inconsistent)."""


# --------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> float:
    """'90', '90s', '5m', '1.5h' -> seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(text))
    if not m:
        raise ValueError(f"not a duration: {text!r} (use e.g. 45s, 30m, 1h)")
    return float(m.group(1)) * _UNITS[m.group(2)]


@dataclass
class Step:
    percent: float                    # the canary's share of each region's traffic
    hold_s: float = 0.0               # least time at this share; a PASS after it advances
    max_hold_s: float | None = None   # INCONCLUSIVE until then -> on_inconclusive (default 2 x hold)
    judge_interval_s: float | None = None   # default: the plan's

    def __post_init__(self):
        if isinstance(self.percent, bool) or not isinstance(self.percent, (int, float)) \
                or not 0 < self.percent <= 100:
            raise ValueError(f"step percentage must be in (0, 100], got {self.percent!r}")
        if not (isinstance(self.hold_s, (int, float)) and self.hold_s >= 0):
            raise ValueError(f"step {self.percent:g}%: hold must be >= 0 s, got {self.hold_s!r}")
        if self.max_hold_s is None:
            self.max_hold_s = 2 * self.hold_s
        if not (isinstance(self.max_hold_s, (int, float)) and self.max_hold_s >= self.hold_s):
            raise ValueError(f"step {self.percent:g}%: max hold ({self.max_hold_s!r}) must be >= hold ({self.hold_s:g})")
        if self.judge_interval_s is not None and not (isinstance(self.judge_interval_s, (int, float))
                                                      and self.judge_interval_s > 0):
            raise ValueError(f"step {self.percent:g}%: judge interval must be > 0 s")


def parse_steps(text: str) -> list[Step]:
    """'1:30m,5:5m,25:5m,50:5m,100': percent[:hold[:max_hold]] per step."""
    steps = []
    for part in str(text).split(","):
        f = part.strip().split(":")
        if not f[0] or len(f) > 3:
            raise ValueError(f"step {part.strip()!r}: use percent[:hold[:max_hold]], e.g. 1:30m or 5:5m:20m")
        try:
            pct = float(f[0].rstrip("%"))
        except ValueError:
            raise ValueError(f"step {part.strip()!r}: {f[0]!r} is not a percentage") from None
        hold = parse_duration(f[1]) if len(f) > 1 else 0.0
        mx = parse_duration(f[2]) if len(f) > 2 else None
        steps.append(Step(pct, hold, mx))
    return steps


@dataclass
class PlanConfig:
    steps: list[Step] = field(default_factory=lambda: parse_steps(DEFAULT_STEPS))
    judge_interval_s: float = 60.0
    ready_timeout_s: float = 120.0     # canary nodes must be ready by then (else: aborted, no traffic)
    max_start_attempts: int = 3        # a node not running after this many starts crashes on start
    poll_s: float = 1.0                # waiting for readiness
    on_inconclusive: str = "pause"
    weight_tolerance: float = 0.02     # a step whose share weights miss by more (relative) is refused

    def __post_init__(self):
        self.steps = [s if isinstance(s, Step) else Step(**s) for s in self.steps]
        if not self.steps:
            raise ValueError("a rollout needs at least one step")
        prev = 0.0
        for s in self.steps:
            if s.percent <= prev:
                raise ValueError(f"step percentages must rise: {s.percent:g}% after {prev:g}%")
            prev = s.percent
        if self.steps[-1].percent != 100:
            raise ValueError(f"the last step must be 100%, not {self.steps[-1].percent:g}%")
        for name in ("judge_interval_s", "ready_timeout_s", "poll_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
                raise ValueError(f"{name} must be > 0, got {v!r}")
        if isinstance(self.max_start_attempts, bool) or not isinstance(self.max_start_attempts, int) \
                or self.max_start_attempts < 1:
            raise ValueError("max_start_attempts must be >= 1")
        if self.on_inconclusive not in ON_INCONCLUSIVE:
            raise ValueError(f"on_inconclusive must be one of {', '.join(ON_INCONCLUSIVE)}, got {self.on_inconclusive!r}")
        if not 0 <= self.weight_tolerance < 0.5:
            raise ValueError("weight_tolerance must be in [0, 0.5)")

    def interval(self, i: int) -> float:
        return self.steps[i].judge_interval_s or self.judge_interval_s

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "PlanConfig":
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"rollout config: unknown keys {sorted(unknown)}")
        return cls(**d)


# --------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Split:
    baseline_weight: int
    canary_weight: int
    share: float          # the canary's share of the backend's traffic these weights give


def share_of(n_baseline: int, n_canary: int, wb: int, wc: int) -> float:
    tot = n_baseline * wb + n_canary * wc
    return n_canary * wc / tot if tot else 0.0


@functools.lru_cache(maxsize=256)
def split(n_baseline: int, n_canary: int, share: float) -> Split:
    """Weights (1..256) for n_baseline baseline and n_canary canary servers of one backend
    so that the canary servers together get `share` (0 < share < 1) of its traffic.

    HAProxy gives each active server weight / (sum of the active servers' weights) of the
    traffic: round-robin requests exactly, hashed ones (`balance hdr(Authorization)`, hash-type
    consistent) in expectation only -- each server owns weight x 16 points of the hash ring,
    and the canaries' part of the ring is off its expectation by about 1/sqrt(16 x weight x
    n_canary) (relative). So the choice minimises (relative share error)^2 + 1/(16 x weight x
    n_canary): 1% of 2 baseline + 1 canary servers is 5 vs 248 (0.998%, ring error ~11%), not
    the exact 2 vs 99 (ring error ~18%)."""
    if n_baseline < 1 or n_canary < 1:
        raise ValueError("a split needs at least one baseline and one canary server")
    if not 0 < share < 1:
        raise ValueError(f"share must be strictly between 0 and 1, got {share!r}")
    best = None
    for wc in range(1, MAX_WEIGHT + 1):
        ideal = n_canary * wc * (1 - share) / (n_baseline * share)
        for wb in sorted({math.floor(ideal), math.ceil(ideal)}):
            wb = min(MAX_WEIGHT, max(1, wb))
            got = share_of(n_baseline, n_canary, wb, wc)
            cost = ((got - share) / share) ** 2 + 1.0 / (CHASH_POINTS_PER_WEIGHT * wc * n_canary)
            key = (round(cost, 15), -wc, -wb)
            if best is None or key < best[0]:
                best = (key, Split(wb, wc, got))
    return best[1]


def granularity(n_baseline: int, n_canary: int) -> dict:
    """The smallest and the largest canary share below 100% that weights can give."""
    return {"min_share": share_of(n_baseline, n_canary, MAX_WEIGHT, 1),
            "max_share": share_of(n_baseline, n_canary, 1, MAX_WEIGHT)}


@dataclass
class RegionLayout:
    backend: str                    # HAProxy backend, portal-<region>
    baseline: list[str]             # the old release's servers (node names)
    canary: list[str]               # the new release's servers
    original: dict[str, int]        # baseline server -> its weight before the rollout

    def __post_init__(self):
        if not self.baseline:
            raise ValueError(f"backend {self.backend}: no baseline servers")
        if not self.canary:
            raise ValueError(f"backend {self.backend}: no canary servers")
        both = set(self.baseline) & set(self.canary)
        if both:
            raise ValueError(f"backend {self.backend}: {sorted(both)} listed as baseline and canary")
        for s in self.baseline:
            w = self.original.get(s)
            if isinstance(w, bool) or not isinstance(w, int) or not 0 <= w <= MAX_WEIGHT:
                raise ValueError(f"backend {self.backend}: original weight of {s} must be 0..256, got {w!r}")

    @property
    def final_weight(self) -> int:
        """The canary servers' weight at 100%: what the baseline's servers had."""
        return max([w for w in self.original.values() if w > 0], default=1)


def desired_weights(layout: dict[str, RegionLayout], percent: float,
                    running: set[str] | None = None) -> tuple[dict, dict]:
    """({backend: {server: weight}}, {region: canary share}) for a canary percentage.
    0: the baseline as it was, canaries 0. 100: baseline 0, canaries at the baseline's old
    weight. Between: `split` over the baseline servers that run (`running`; all when None) --
    the share stays right when one of them is down -- and a region whose baseline has no
    running server gives its canary nothing (the backend's backup servers in other regions
    take its traffic, not the canary alone)."""
    weights: dict[str, dict[str, int]] = {}
    shares: dict[str, float] = {}
    for region, r in layout.items():
        w: dict[str, int] = {}
        if percent <= 0:
            w.update({s: r.original[s] for s in r.baseline})
            w.update({s: 0 for s in r.canary})
            shares[region] = 0.0
        elif percent >= 100:
            w.update({s: 0 for s in r.baseline})
            w.update({s: r.final_weight for s in r.canary})
            shares[region] = 1.0
        else:
            up_b = [s for s in r.baseline if running is None or s in running]
            up_c = [s for s in r.canary if running is None or s in running]
            if not up_b or not up_c:
                w.update({s: r.original[s] for s in r.baseline})
                w.update({s: 0 for s in r.canary})
                shares[region] = 0.0
            else:
                sp = split(len(up_b), len(up_c), percent / 100)
                w.update({s: sp.baseline_weight for s in r.baseline})
                w.update({s: sp.canary_weight for s in r.canary})
                shares[region] = sp.share
        weights[r.backend] = w
    return weights, shares


def weight_problems(layout: dict[str, RegionLayout], steps: list[Step], tolerance: float = 0.02) -> list[str]:
    """Sentences for every step whose share the weights cannot give within `tolerance`."""
    out = []
    for region, r in layout.items():
        g = granularity(len(r.baseline), len(r.canary))
        for s in steps:
            if s.percent >= 100:
                continue
            sp = split(len(r.baseline), len(r.canary), s.percent / 100)
            target = s.percent / 100
            if abs(sp.share - target) > tolerance * target + 1e-12:
                out.append(f"{region}: {s.percent:g}% is not reachable with {len(r.baseline)} baseline and "
                           f"{len(r.canary)} canary server(s) and weights 1..{MAX_WEIGHT} (closest "
                           f"{100 * sp.share:.3g}%; shares from {100 * g['min_share']:.3g}% to "
                           f"{100 * g['max_share']:.3g}%)")
    return out


def _differs(observed: dict, desired: dict) -> list[str]:
    """backend/server entries whose observed weight is not the desired one (absent = 0)."""
    out = []
    for be, ws in desired.items():
        have = observed.get(be, {})
        for srv, w in ws.items():
            if int(have.get(srv, 0)) != w:
                out.append(f"{be}/{srv}")
    return out


# --------------------------------------------------------------------------------------
# Observations and actions
# --------------------------------------------------------------------------------------

@dataclass
class NodeObs:
    running: bool = False
    ready: bool = False


@dataclass
class Observation:
    now: float                                          # unix seconds
    nodes: dict[str, NodeObs] = field(default_factory=dict)   # absent = not running
    weights: dict[str, dict[str, int]] = field(default_factory=dict)   # backend -> server -> weight

    def running(self, n: str) -> bool:
        o = self.nodes.get(n)
        return bool(o and o.running)

    def ready(self, n: str) -> bool:
        o = self.nodes.get(n)
        return bool(o and o.running and o.ready)

    def registered(self, n: str) -> bool:
        return any(n in ws for ws in self.weights.values())


@dataclass
class Action:
    kind: str          # start_nodes | set_weights | judge | stop_nodes | wait | finished
    reason: str = ""
    nodes: list[str] = field(default_factory=list)
    weights: dict = field(default_factory=dict)
    shares: dict = field(default_factory=dict)
    percent: float | None = None
    step: int | None = None
    since: float | None = None          # judge: errors over [since, now] (since traffic began)
    step_since: float | None = None     # judge: latency over [step_since, now] (this share)
    until: float | None = None          # wait
    operator: bool = False              # wait: paused, an operator's command is awaited
    outcome: str | None = None          # finished

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items()
                if not (v is None or v is False or (isinstance(v, (str, list, dict)) and not v))}


# --------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------

@dataclass
class RolloutState:
    id: str
    created_at: float
    release: dict                       # the new release: {"version": ..., "binary": ...}
    baseline_release: dict
    layout: dict[str, RegionLayout]
    config: PlanConfig
    judge_config: dict
    phase: str = "starting"
    phase_since: float = 0.0
    step: int = 0
    step_since: float | None = None
    traffic_since: float | None = None
    next_judge_at: float | None = None
    max_hold_from: float | None = None  # an operator's resume restarts the max-hold clock
    baseline_stopping: bool = False     # promoting: the old release is going; no way back
    start_attempts: dict[str, int] = field(default_factory=dict)
    reason: str = ""
    last_weights: dict = field(default_factory=dict)
    last_shares: dict = field(default_factory=dict)
    steps_log: list[dict] = field(default_factory=list)
    judgements: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    updated_at: float = 0.0

    @property
    def canary_nodes(self) -> list[str]:
        return [n for r in self.layout.values() for n in r.canary]

    @property
    def baseline_nodes(self) -> list[str]:
        return [n for r in self.layout.values() for n in r.baseline]

    @property
    def percent(self) -> float:
        return self.config.steps[self.step].percent

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["layout"] = {k: asdict(v) for k, v in self.layout.items()}
        d["config"] = self.config.to_dict()
        return {"format": STATE_FORMAT, **copy.deepcopy(d)}

    @classmethod
    def from_dict(cls, d: dict) -> "RolloutState":
        if not isinstance(d, dict) or d.get("format") != STATE_FORMAT:
            raise StateError(f"not a rollout state of format {STATE_FORMAT}")
        d = dict(d)
        d.pop("format")
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise StateError(f"rollout state: unknown keys {sorted(unknown)}")
        try:
            d["layout"] = {k: RegionLayout(**v) for k, v in d["layout"].items()}
            d["config"] = PlanConfig.from_dict(d["config"])
            s = cls(**d)
        except (KeyError, TypeError, ValueError) as e:
            raise StateError(f"rollout state is inconsistent: {e}") from None
        if s.phase not in PHASES:
            raise StateError(f"rollout state: unknown phase {s.phase!r}")
        if not 0 <= s.step < len(s.config.steps):
            raise StateError(f"rollout state: step {s.step} outside the {len(s.config.steps)} configured")
        return s


def new_rollout(rollout_id: str, now: float, layout: dict[str, RegionLayout], release: dict,
                baseline_release: dict, config: PlanConfig | None = None,
                judge_config: judge_mod.JudgeConfig | None = None) -> RolloutState:
    config = config or PlanConfig()
    judge_config = judge_config or judge_mod.JudgeConfig()
    if not layout:
        raise ValueError("a rollout needs at least one region")
    names = [n for r in layout.values() for n in r.baseline + r.canary]
    if len(set(names)) != len(names):
        raise ValueError("a server is listed in two regions")
    probs = weight_problems(layout, config.steps, config.weight_tolerance)
    if probs:
        raise ValueError("; ".join(probs))
    s = RolloutState(rollout_id, now, dict(release), dict(baseline_release), layout, config,
                     judge_config.to_dict(), phase="starting", phase_since=now, updated_at=now)
    _event(s, now, "created", f"steps {', '.join(f'{x.percent:g}%' for x in config.steps)}")
    return s


def save_state(path: Path, state: RolloutState) -> None:
    """Atomically and durably (temp file, fsync, rename, fsync of the folder)."""
    text = json.dumps(state.to_dict(), indent=1, sort_keys=True, allow_nan=False) + "\n"
    write_atomic(Path(path), text, 0o600, durable=True)


def load_state(path: Path) -> RolloutState | None:
    """The saved state; None when there is none. A leftover temporary file (a write that was
    interrupted) is ignored: the rename never happened, the previous state stands."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        return None
    try:
        d = json.loads(text)
    except ValueError as e:
        raise StateError(f"{p}: not JSON ({e}); it is only ever replaced whole, so something else wrote it") from None
    try:
        return RolloutState.from_dict(d)
    except StateError as e:
        raise StateError(f"{p}: {e}") from None


# --------------------------------------------------------------------------------------
# Transitions
# --------------------------------------------------------------------------------------

def _event(s: RolloutState, now: float, event: str, detail: str = "") -> None:
    s.events.append({"at": now, "phase": s.phase, "step": s.step, "event": event, "detail": detail})


def _set_phase(s: RolloutState, now: float, phase: str, reason: str) -> None:
    s.phase = phase
    s.phase_since = now
    s.reason = reason
    _event(s, now, phase, reason)


def _close_step(s: RolloutState, now: float, outcome: str) -> None:
    if s.steps_log and s.steps_log[-1].get("ended_at") is None:
        s.steps_log[-1]["ended_at"] = now
        s.steps_log[-1]["outcome"] = outcome


def _enter_step(s: RolloutState, i: int, now: float, reason: str) -> None:
    s.step = i
    s.step_since = now
    s.max_hold_from = None
    s.next_judge_at = now + s.config.interval(i)
    st = s.config.steps[i]
    s.steps_log.append({"index": i, "percent": st.percent, "hold_s": st.hold_s, "max_hold_s": st.max_hold_s,
                        "started_at": now, "ended_at": None, "outcome": None, "judgements": 0,
                        "last_verdict": None, "shares": {}})
    _set_phase(s, now, "promoting" if st.percent >= 100 else "step", reason)


def _advance(s: RolloutState, now: float, reason: str) -> None:
    _close_step(s, now, "advanced")
    _enter_step(s, s.step + 1, now, reason)


def _rollback(s: RolloutState, now: float, reason: str, phase: str = "rolling_back") -> None:
    _close_step(s, now, "rolled back" if phase == "rolling_back" else "aborted")
    _set_phase(s, now, phase, reason)


def _weights_action(s: RolloutState, obs: Observation, percent: float, why: str) -> Action | None:
    running = {n for n in s.canary_nodes + s.baseline_nodes if obs.running(n)}
    want, shares = desired_weights(s.layout, percent, running if 0 < percent < 100 else None)
    off = _differs(obs.weights, want)
    if not off:
        return None
    if want != s.last_weights:
        s.last_weights, s.last_shares = want, shares
        _event(s, obs.now, "weights", f"{percent:g}%: " + ", ".join(f"{r} {100 * v:.3g}%" for r, v in shares.items()))
        if s.steps_log and s.steps_log[-1].get("ended_at") is None:
            s.steps_log[-1]["shares"] = shares
    return Action("set_weights", f"{why}: {len(off)} weight(s) differ ({', '.join(off[:4])}"
                  f"{', ...' if len(off) > 4 else ''})", weights=want, shares=shares, percent=percent)


def _judge_or_wait(s: RolloutState, now: float, why: str, operator: bool = False) -> Action:
    if s.next_judge_at is None or now >= s.next_judge_at:
        return Action("judge", why, step=s.step, percent=s.percent, since=s.traffic_since,
                      step_since=s.step_since)
    return Action("wait", why, until=s.next_judge_at, operator=operator)


def _decide_once(s: RolloutState, obs: Observation) -> Action | None:
    now, cfg = obs.now, s.config
    canary = s.canary_nodes
    if s.phase in TERMINAL:
        return Action("finished", s.reason, outcome=s.phase)

    if s.phase in ("rolling_back", "aborting"):
        a = _weights_action(s, obs, 0, "traffic back to the baseline")
        if a:
            return a
        left = [n for n in canary if obs.running(n) or obs.registered(n)]
        if left:
            return Action("stop_nodes", f"stop the new release's nodes ({s.reason})", nodes=left)
        _set_phase(s, now, "rolled_back" if s.phase == "rolling_back" else "aborted", s.reason)
        return None

    if s.phase == "starting":
        a = _weights_action(s, obs, 0, "no traffic to canary nodes before they are ready")
        if a:
            return a
        missing = [n for n in canary if not (obs.running(n) and obs.registered(n))]
        if missing:
            spent = [n for n in missing if s.start_attempts.get(n, 0) >= cfg.max_start_attempts]
            if spent:
                _rollback(s, now, f"canary node(s) {', '.join(spent)} not running after "
                                  f"{cfg.max_start_attempts} start(s): it crashes on start", "aborting")
                return None
            if now - s.phase_since > cfg.ready_timeout_s:
                _rollback(s, now, f"canary node(s) {', '.join(missing)} not running after "
                                  f"{cfg.ready_timeout_s:g}s", "aborting")
                return None
            for n in missing:
                s.start_attempts[n] = s.start_attempts.get(n, 0) + 1
            _event(s, now, "start", ", ".join(missing))
            return Action("start_nodes", "start the new release's nodes (weight 0)", nodes=missing)
        waiting = [n for n in canary if not obs.ready(n)]
        if waiting:
            deadline = s.phase_since + cfg.ready_timeout_s
            if now >= deadline:
                _rollback(s, now, f"canary node(s) {', '.join(waiting)} not ready after "
                                  f"{cfg.ready_timeout_s:g}s", "aborting")
                return None
            return Action("wait", f"waiting for {', '.join(waiting)} to become ready",
                          until=min(now + cfg.poll_s, deadline))
        s.traffic_since = now
        _enter_step(s, 0, now, "canary nodes ready")
        return None

    dead = [n for n in canary if not (obs.running(n) and obs.registered(n))]
    if s.phase in ("step", "paused"):
        if dead:
            _rollback(s, now, f"canary node(s) {', '.join(dead)} stopped running (or left HAProxy)")
            return None
        a = _weights_action(s, obs, s.percent, f"canary at {s.percent:g}%")
        if a:
            return a
        if s.phase == "paused":
            return _judge_or_wait(s, now, f"paused: {s.reason}; waiting for an operator "
                                          f"(advance | resume | rollback | abort)", operator=True)
        return _judge_or_wait(s, now, f"holding at {s.percent:g}%")

    if s.phase == "promoting":
        if not s.baseline_stopping:
            if dead:
                _rollback(s, now, f"canary node(s) {', '.join(dead)} stopped running at 100%")
                return None
        a = _weights_action(s, obs, 100, "all traffic to the new release")
        if a:
            return a
        soak_end = s.phase_since + cfg.steps[s.step].hold_s
        if not s.baseline_stopping and now < soak_end:
            a = _judge_or_wait(s, now, f"soak at 100% until {soak_end:.0f}")
            if a.kind == "wait":
                a.until = min(a.until, soak_end)
            return a
        left = [n for n in s.baseline_nodes if obs.running(n) or obs.registered(n)]
        if left:
            if not s.baseline_stopping:
                s.baseline_stopping = True
                _event(s, now, "stop_baseline", ", ".join(left))
            return Action("stop_nodes", "drain and stop the old release's nodes", nodes=left)
        _close_step(s, now, "done")
        _set_phase(s, now, "done", "the new release serves all traffic")
        return None

    raise StateError(f"unknown phase {s.phase!r}")


def _clone(s: RolloutState) -> RolloutState:
    """A copy that transitions may change: judgements and events are only ever appended,
    layout and config never change, so those are shared."""
    c = copy.copy(s)
    c.steps_log = copy.deepcopy(s.steps_log)
    c.judgements = list(s.judgements)
    c.events = list(s.events)
    c.start_attempts = dict(s.start_attempts)
    return c


def decide(state: RolloutState, obs: Observation) -> tuple[RolloutState, Action]:
    """The next action for this state and observation, and the state to save before it is
    performed. Pure (the given state is not changed) and idempotent: the same state and
    observation give the same action."""
    s = _clone(state)
    for _ in range(len(PHASES) + 2):
        a = _decide_once(s, obs)
        if a is not None:
            s.updated_at = max(s.updated_at, obs.now)
            return s, a
    raise StateError(f"no action reached from phase {s.phase}")   # a bug: phases cycle


def _compact(v: judge_mod.Verdict | dict) -> dict:
    d = v.to_dict() if hasattr(v, "to_dict") else dict(v)
    line = v.line() if hasattr(v, "line") else d.get("line", "")
    ev = {}
    for c in d.get("checks", []):
        if c.get("name") == "error_rate":
            ev.update({k: c.get(k) for k in ("canary_requests", "canary_errors", "baseline_requests",
                                             "baseline_errors", "p_fail", "p_pass")})
        elif c.get("name") == "journeys" and c.get("verdict") != judge_mod.SKIPPED:
            # the pinned journeys see a failing release too, also when few user sessions hash
            # onto the canary's nodes and its request counts show nothing yet
            ev.update({"canary_journeys_passed": c.get("passed"), "canary_journeys_failed": c.get("failed"),
                       "baseline_journeys_passed": c.get("baseline_passed"),
                       "baseline_journeys_failed": c.get("baseline_failed")})
    return {"verdict": d["verdict"], "line": line, "reasons": d.get("reasons", []), "evidence": ev,
            "window": d.get("window", {})}


def record_verdict(state: RolloutState, verdict: judge_mod.Verdict | dict, step: int, now: float) -> RolloutState:
    """The state after a judgement of step `step` (ignored when the rollout has moved on)."""
    s = _clone(state)
    if s.phase not in ("step", "paused", "promoting") or step != s.step or s.baseline_stopping:
        return s
    j = _compact(verdict)
    v = j["verdict"]
    if v not in (judge_mod.PASS, judge_mod.FAIL, judge_mod.INCONCLUSIVE):
        raise ValueError(f"unknown verdict {v!r}")
    j.update({"at": now, "step": s.step, "percent": s.percent})
    s.judgements.append(j)
    log = s.steps_log[-1]
    log["judgements"] += 1
    log["last_verdict"] = j["line"]
    s.updated_at = max(s.updated_at, now)
    interval = s.config.interval(s.step)
    if v == judge_mod.FAIL:
        _rollback(s, now, f"judge at {s.percent:g}%: {'; '.join(j['reasons'])}")
        return s
    s.next_judge_at = now + interval
    if s.phase != "step":
        return s             # paused or soaking: only a FAIL changes anything
    st = s.config.steps[s.step]
    held = now - s.step_since
    if v == judge_mod.PASS and held >= st.hold_s:
        _advance(s, now, f"passed at {s.percent:g}% after {held:.0f}s")
        return s
    if now - (s.max_hold_from or s.step_since) >= st.max_hold_s:
        why = (f"still {v} at {s.percent:g}% after {held:.0f}s (max hold {st.max_hold_s:g}s): "
               f"{'; '.join(j['reasons'])}")
        if s.config.on_inconclusive == "advance":
            _advance(s, now, why + " -> advance (on_inconclusive)")
        elif s.config.on_inconclusive == "rollback":
            _rollback(s, now, why + " -> rollback (on_inconclusive)")
        else:
            _set_phase(s, now, "paused", why)
    return s


def operator(state: RolloutState, command: str, now: float, who: str = "operator") -> RolloutState:
    """An operator's command: advance (to the next step), resume (a paused step holds on, its
    max-hold clock restarted), rollback, abort. Refused (ValueError) where it makes no sense."""
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}: use one of {', '.join(COMMANDS)}")
    s = _clone(state)
    if s.phase in TERMINAL:
        raise ValueError(f"the rollout has ended ({s.phase})")
    if command in ("rollback", "abort"):
        if s.phase == "promoting" and s.baseline_stopping:
            raise ValueError("the old release's nodes are being stopped: the rollout can only finish")
        if s.phase in ("rolling_back", "aborting"):
            return s
        if command == "rollback" and s.phase == "starting":
            command = "abort"        # nothing was exposed: nothing to judge as rolled back
        _rollback(s, now, f"{who}: {command}", "rolling_back" if command == "rollback" else "aborting")
    elif command == "advance":
        if s.phase not in ("step", "paused"):
            raise ValueError(f"advance: only a step or a paused step advances, not {s.phase}")
        _advance(s, now, f"{who}: advance")
    else:
        if s.phase != "paused":
            raise ValueError(f"resume: the rollout is not paused ({s.phase})")
        s.max_hold_from = now
        s.next_judge_at = now
        _set_phase(s, now, "step", f"{who}: resume")
    s.updated_at = max(s.updated_at, now)
    return s


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------

def report(state: RolloutState) -> dict:
    """Steps, durations, samples, judgements, and the failed requests the canary caused."""
    s = state
    end = s.updated_at if s.phase in TERMINAL else None
    steps = []
    for log in s.steps_log:
        ended = log.get("ended_at")
        steps.append({**log, "duration_s": (ended if ended is not None else s.updated_at) - log["started_at"]})
    last = next((j for j in reversed(s.judgements) if j.get("evidence")), None)
    ev = (last or {}).get("evidence") or {}
    nc, xc = ev.get("canary_requests") or 0, ev.get("canary_errors") or 0
    nb, xb = ev.get("baseline_requests") or 0, ev.get("baseline_errors") or 0
    expected = nc * xb / nb if nb else 0.0
    failed = {"canary_requests": nc, "canary_errors": xc, "baseline_requests": nb, "baseline_errors": xb,
              "excess_canary_errors": max(0.0, xc - expected),
              "canary_errors_share_of_all": xc / (nc + nb) if nc + nb else 0.0,
              "as_of": (last or {}).get("at")}
    if ev.get("canary_journeys_failed") is not None:
        failed["journeys"] = {side: {"passed": ev.get(f"{side}_journeys_passed"),
                                     "failed": ev.get(f"{side}_journeys_failed")} for side in ("canary", "baseline")}
    counts: dict[str, int] = {}
    for j in s.judgements:
        counts[j["verdict"]] = counts.get(j["verdict"], 0) + 1
    return {"id": s.id, "release": s.release, "baseline_release": s.baseline_release,
            "outcome": s.phase if s.phase in TERMINAL else f"running ({s.phase})", "reason": s.reason,
            "started_at": s.created_at, "ended_at": end, "duration_s": (end or s.updated_at) - s.created_at,
            "traffic_since": s.traffic_since, "steps": steps, "judgement_counts": counts,
            "judgements": s.judgements, "failed_requests": failed, "events": s.events}


def report_text(state: RolloutState) -> str:
    r = report(state)
    f = r["failed_requests"]
    ver = (r["release"].get("version") or r["release"].get("binary") or "?")
    old = (r["baseline_release"].get("version") or r["baseline_release"].get("binary") or "?")
    out = [f"rollout {r['id']}: {old} -> {ver}: {r['outcome']} after {r['duration_s']:.0f}s"
           + (f" ({r['reason']})" if r["reason"] else "")]
    for st in r["steps"]:
        shares = ", ".join(f"{k} {100 * v:.3g}%" for k, v in st.get("shares", {}).items())
        out.append(f"  step {st['index'] + 1} {st['percent']:g}%: {st['duration_s']:.0f}s, "
                   f"{st['judgements']} judgement(s), {st['outcome'] or 'current'}"
                   + (f" [{shares}]" if shares else ""))
        if st.get("last_verdict"):
            out.append(f"    last: {st['last_verdict']}")
    out.append("  judgements: " + (", ".join(f"{k} {v}" for k, v in sorted(r["judgement_counts"].items()))
                                   or "none"))
    out.append(f"  canary: {f['canary_errors']} failed of {f['canary_requests']} requests; baseline "
               f"{f['baseline_errors']} of {f['baseline_requests']}; failed requests attributable to the "
               f"canary {f['excess_canary_errors']:.1f} ({100 * f['canary_errors_share_of_all']:.4f}% of all "
               f"requests failed on the canary)")
    j = f.get("journeys")
    if j:
        base = (f"{j['baseline']['failed']} of {j['baseline']['passed'] + j['baseline']['failed']}"
                if j["baseline"]["passed"] is not None else "none run")
        out.append(f"  journeys pinned to the canary: {j['canary']['failed']} failed of "
                   f"{j['canary']['passed'] + j['canary']['failed']}; baseline {base}")
    return "\n".join(out)
