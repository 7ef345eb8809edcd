"""The canary judge: canary against baseline over the same window -> pass, fail or inconclusive.

Pure: it takes counts (which the rollout controller reads from Prometheus) and returns a
Verdict with every number that led to it, as JSON (`Verdict.to_dict`) and as one text line
(`Verdict.line`). Nothing here talks to a process.

Input, per side (canary, baseline), over the same window: requests and errors (5xx answers
plus requests that failed without an answer), optionally latency (p50/p99 or histogram
buckets), restarts/crashes, and for the canary the synthetic journeys pinned to it.

Checks (each pass | fail | inconclusive | skipped); the verdict is FAIL when any check fails,
PASS when every check that ran passes, else INCONCLUSIVE (need more data).

1. error_rate -- the rule of the case study: roll back when the canary's error rate exceeds
   the baseline's by more than delta = max_error_increase (0.001, i.e. 0.1 percentage point).

   An exact one-sided test of H0: p_c <= p_b + delta against H1: p_c > p_b + delta, where
   p_c, p_b are the canary's and the baseline's error probabilities and the counts are
   binomial: x_c of n_c, x_b of n_b. Fisher's exact test only tests delta = 0 (it conditions
   on the total, which a margin breaks), and plugging in the baseline's observed rate is not
   a test at all when the baseline has no errors (x_b = 0 says p_b = 0, which it is not: that
   is the gap Kayenta is known for). So the nuisance parameter p_b is handled by the
   confidence-interval p-value of Berger & Boos (JASA 1994):

       U_b   = the Clopper-Pearson upper bound of p_b at level 1 - gamma (gamma = 0.001);
               for x_b = 0 it is 1 - gamma^(1/n_b), about 6.9/n_b
       p     = P(X >= x_c | X ~ Binomial(n_c, U_b + delta)) + gamma
       fail  when p <= alpha (alpha = 1 - confidence = 0.05)

   The binomial tail is monotone in the probability, so the supremum of the tail over every
   p_b the interval allows is taken at U_b; adding gamma covers the case that p_b lies above
   U_b. The p-value is therefore valid (the false-rollback rate of a canary exactly delta
   worse than the baseline is at most alpha) for every sample size and every p_b, including
   zero baseline errors and tiny canary traffic -- no normal approximation anywhere.
   Equivalently: fail when L_c - U_b > delta, where L_c is the canary's Clopper-Pearson
   lower bound at level 1 - (alpha - gamma); both bounds are reported.

   PASS needs the mirror test (non-inferiority): H0': p_c >= p_b + delta is rejected,
       p' = P(X <= x_c | Binomial(n_c, L_b + delta)) + gamma <= alpha,
   with L_b the baseline's lower bound at 1 - gamma; equivalently U_c - L_b < delta. Few
   samples therefore give INCONCLUSIVE, never PASS: with a clean baseline a canary needs
   about ln(alpha - gamma)/ln(1 - delta) = 3,015 requests without an error to pass, and a
   canary with a higher error rate than baseline + delta can never pass.

   Fast fail, without the baseline: when even the canary's own data reject
   "p_c <= max_error_rate" (0.05) at fast_confidence (0.99) -- P(X >= x_c | n_c,
   max_error_rate) <= 0.01 -- it fails at once (3 failed of the first 5 requests do it).

   Worked example (1% canary at 50 req/s for 30 minutes, the baseline clean): n_c = 900,
   x_c = 9, n_b = 89,100, x_b = 0. U_b = 1 - 0.001^(1/89100) = 7.75e-5; under H0 the canary's
   error probability is at most 0.001 + 7.75e-5 = 0.00108, so about 0.97 errors were
   expected; P(X >= 9 | 900, 0.00108) = 8e-7, p = 8e-7 + 0.001 = 0.001 <= 0.05: FAIL. With
   this traffic 4 errors already fail (P(X >= 4) = 0.018). After 60 s (n_c = 30, n_b = 2,970)
   a canary needs 2 errors to fail, and 0 or 1 error is INCONCLUSIVE.

   Repeated looks: the controller judges continuously, and each look may fail at alpha; the
   data of successive looks overlap, so the overall false-rollback rate stays well below
   (looks x alpha). Simulated, 30 looks a minute apart at 1% of 50 req/s: a canary as good
   as the baseline is rolled back in 0.2% of runs when both fail 0.05% of requests, 3% when
   both fail 0.5%; one exactly delta worse (the test's boundary) in 5% (12% at 500 req/s).
   Raise `confidence` to trade detection time against false rollbacks.

2. latency_p50, latency_p99 -- the canary's quantile q must not exceed
       t = max(baseline_q * ratio, baseline_q + latency_min_increase_s)
   (ratio p50_ratio / p99_ratio, 1.5; min increase 5 ms: sub-millisecond noise is no
   regression). With histogram buckets (Prometheus `le` buckets, cumulative counts over the
   window) the canary fails by an exact binomial test: b is the smallest bucket bound >= t,
   k the canary requests slower than b; if the canary's q-quantile were <= t, at most a
   fraction 1 - q of its requests would be slower than b, so
       P(X >= k | Binomial(n_c, 1 - q)) <= alpha  -> fail
   (5 of 5 requests above the p50 threshold already fail: 0.5^5 = 0.031), given at least
   latency_min_tail (5) such slow requests: they come in bursts on shared machines, not
   independently (3 of 78 above a p99 limit, p = 0.044, was a burst); the baseline needs
   max(latency_min_samples, latency_min_tail / (1 - q)) samples for its quantile (p50: 50,
   p99: 500). Besides, once both sides have at least
   max(latency_min_samples, latency_estimate_tail / (1 - q)) samples (p50: 50, p99: 2,000),
   the point estimates decide: canary_q <= t passes; canary_q > t fails with percentiles
   only (this is the whole check then). With buckets the estimate is an interpolation, and
   canary_q > t fails only when the canary's requests slower than t, the bucket holding t
   counted as spread evenly (the interpolation's own assumption), reject "at most 1 - q
   of them" by the same binomial test (and latency_min_tail); else inconclusive. The count
   is an estimate, not an observation, so this is a heuristic test: valid as far as the
   requests are spread evenly inside that bucket (canary requests bunched just under t
   could still fail a good release). This covers a regression that stays inside the
   bucket holding t, which the exact test cannot see, without failing a good release whose
   median moved a few requests across a bucket bound (measured: note.create 15.5 ms
   against 9.66 ms at n = 63, same build). A p99 estimated from 500 requests
   rests on its 5 slowest, which one burst moves: a good release (the same binary) measured
   note.create p99 169 ms against 93.7 ms at n = 517, a false rollback; 20 requests beyond
   the quantile make the estimate a measurement.

3. restarts -- any canary restart or crash in the window fails.

4. journeys -- synthetic journeys pinned to the canary: more than max_journey_failures (0)
   failed runs fail; at least min_journey_runs passed runs pass. When the baseline's runs
   of the same journeys are given, failures fail only when the canary's failure rate is
   significantly above the baseline's (journeys_check).

A check whose input is absent (None) is skipped; requests and errors are required.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields

PASS, FAIL, INCONCLUSIVE, SKIPPED = "pass", "fail", "inconclusive", "skipped"

# --------------------------------------------------------------------------------------
# Binomial distribution, exact, in log space (no scipy/numpy on the machines this runs on)
# --------------------------------------------------------------------------------------

_NEG_INF = float("-inf")


def _log_pmf(k: int, n: int, p: float) -> float:
    if p <= 0.0:
        return 0.0 if k == 0 else _NEG_INF
    if p >= 1.0:
        return 0.0 if k == n else _NEG_INF
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
            + k * math.log(p) + (n - k) * math.log1p(-p))


def _mode(n: int, p: float) -> int:
    return min(n, int(math.floor((n + 1) * p)))


def _log_upper_sum(x: int, n: int, p: float) -> float:
    """log P(X >= x) for x >= the mode: the terms fall from x on."""
    odds = p / (1.0 - p)
    s = t = 1.0
    k = x
    while k < n:
        t *= (n - k) / (k + 1) * odds
        k += 1
        s += t
        if t < 1e-17 * s:
            break
    return _log_pmf(x, n, p) + math.log(s)


def _log_lower_sum(x: int, n: int, p: float) -> float:
    """log P(X <= x) for x <= the mode: the terms fall from x down."""
    inv_odds = (1.0 - p) / p
    s = t = 1.0
    k = x
    while k > 0:
        t *= k / (n - k + 1) * inv_odds
        k -= 1
        s += t
        if t < 1e-17 * s:
            break
    return _log_pmf(x, n, p) + math.log(s)


def log_sf(x: int, n: int, p: float) -> float:
    """log P(X >= x), X ~ Binomial(n, p)."""
    if x <= 0:
        return 0.0
    if x > n or p <= 0.0:
        return _NEG_INF
    if p >= 1.0:
        return 0.0
    if x >= _mode(n, p):
        return _log_upper_sum(x, n, p)
    low = math.exp(_log_lower_sum(x - 1, n, p))     # below the mode: at most about 1/2
    return math.log1p(-low) if low < 1.0 else _NEG_INF


def log_cdf(x: int, n: int, p: float) -> float:
    """log P(X <= x), X ~ Binomial(n, p)."""
    if x < 0:
        return _NEG_INF
    if x >= n or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return _NEG_INF
    if x <= _mode(n, p):
        return _log_lower_sum(x, n, p)
    up = math.exp(_log_upper_sum(x + 1, n, p))
    return math.log1p(-up) if up < 1.0 else _NEG_INF


def sf(x: int, n: int, p: float) -> float:
    return math.exp(log_sf(x, n, p))


def cdf(x: int, n: int, p: float) -> float:
    return math.exp(log_cdf(x, n, p))


def _bisect_geometric(lo: float, hi: float, above) -> float:
    """The boundary in [lo, hi] (0 < lo < hi) where `above(p)` turns true; relative 1e-13."""
    for _ in range(200):
        if hi - lo <= 1e-13 * hi:
            break
        mid = math.sqrt(lo * hi)
        if not lo < mid < hi:
            mid = (lo + hi) / 2
        if above(mid):
            hi = mid
        else:
            lo = mid
    return hi


def upper_bound(x: int, n: int, a: float) -> float:
    """Clopper-Pearson one-sided upper confidence bound of p at level 1 - a: the p at which
    P(X <= x | n, p) = a."""
    if n <= 0 or x >= n:
        return 1.0
    if x == 0:
        return -math.expm1(math.log(a) / n)
    la = math.log(a)
    return _bisect_geometric(x / n, 1.0, lambda p: log_cdf(x, n, p) < la)


def lower_bound(x: int, n: int, a: float) -> float:
    """Clopper-Pearson one-sided lower confidence bound of p at level 1 - a: the p at which
    P(X >= x | n, p) = a."""
    if n <= 0 or x <= 0:
        return 0.0
    if x >= n:
        return math.exp(math.log(a) / n)
    la = math.log(a)
    lo = x / n
    while log_sf(x, n, lo) >= la:
        lo /= 16
    return _bisect_geometric(lo, x / n, lambda p: log_sf(x, n, p) >= la)


# --------------------------------------------------------------------------------------
# Input
# --------------------------------------------------------------------------------------

def _count(v, what: str) -> int:
    """A count (Prometheus may give floats: increase() extrapolates); rounded, >= 0."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"{what} must be a number, got {v!r}")
    c = int(round(v))
    if c < 0:
        raise ValueError(f"{what} must not be negative, got {v!r}")
    return c


def _seconds(v, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise ValueError(f"{what} must be a non-negative number of seconds, got {v!r}")
    return float(v)


@dataclass
class Latency:
    """A side's latency over the window: percentiles (seconds) with their sample count, or
    Prometheus histogram buckets [(le, cumulative count), ...] ending with le = +Inf (sum
    by (le) of the bucket counters' growth over the window; best taken as the difference of
    two instant snapshots, which gives exact integers)."""
    count: int = 0
    p50: float | None = None
    p99: float | None = None
    buckets: list[tuple[float, int]] | None = None

    def __post_init__(self):
        if self.buckets is not None:
            bs = []
            prev_le, prev_c = -1.0, 0
            for i, item in enumerate(self.buckets):
                try:
                    le, c = item
                except (TypeError, ValueError):
                    raise ValueError(f"latency bucket {i} must be [le, cumulative count], got {item!r}") from None
                le = float(le)
                if math.isnan(le) or le <= prev_le or le < 0:
                    raise ValueError(f"latency bucket bounds must be ascending and >= 0: {le!r} after {prev_le!r}")
                c = _count(c, f"latency bucket le={le:g} count")
                if c < prev_c - 1:
                    raise ValueError(f"latency buckets must be cumulative: le={le:g} has {c}, "
                                     f"fewer than {prev_c} at a lower bound")
                c = max(c, prev_c)          # rounding noise of extrapolated increases
                bs.append((le, c))
                prev_le, prev_c = le, c
            if not bs or not math.isinf(bs[-1][0]):
                raise ValueError("latency buckets must end with le=+Inf (the total count)")
            self.buckets = bs
            self.count = bs[-1][1]
        else:
            self.count = _count(self.count, "latency count")
            for q in ("p50", "p99"):
                v = getattr(self, q)
                if v is not None:
                    setattr(self, q, _seconds(v, f"latency {q}"))

    def quantile(self, q: float) -> float | None:
        """The q-quantile: given, or interpolated within its bucket as Prometheus's
        histogram_quantile does (the largest finite bound when it falls in +Inf)."""
        if self.buckets is None:
            return {0.5: self.p50, 0.99: self.p99}.get(q)
        total = self.count
        if total <= 0:
            return None
        rank = q * total
        lower, below = 0.0, 0
        for le, c in self.buckets:
            if c >= rank:
                if math.isinf(le):
                    return lower
                if c == below:
                    return le
                return lower + (le - lower) * (rank - below) / (c - below)
            lower, below = le, c
        return lower

    def above(self, t: float) -> tuple[float, int]:
        """(b, k): the smallest bucket bound b >= t and the number of samples slower than b."""
        for le, c in self.buckets or []:
            if le >= t:
                return le, self.count - c
        return math.inf, 0

    def above_interpolated(self, t: float) -> float:
        """Samples slower than t, counting the bucket that holds t as spread evenly over it
        (the assumption `quantile` makes): the count behind the interpolated estimate."""
        lower, below = 0.0, 0
        for le, c in self.buckets or []:
            if le >= t:
                if math.isinf(le):
                    # t beyond the largest finite bound: how many of the +Inf bucket's samples
                    # are slower than t is unknown; 0 (latency_check never asks: the
                    # estimate is capped at that bound, which is below t)
                    return float(self.count - below) if t <= lower else 0.0
                share = (le - max(t, lower)) / (le - lower) if le > lower else 0.0
                return (self.count - c) + (c - below) * share
            lower, below = le, c
        return 0.0

    @classmethod
    def from_dict(cls, d) -> "Latency":
        if not isinstance(d, dict):
            raise ValueError(f"latency must be an object, got {d!r}")
        unknown = set(d) - {"count", "p50", "p99", "buckets"}
        if unknown:
            raise ValueError(f"latency: unknown keys {sorted(unknown)}")
        b = d.get("buckets")
        if b is not None:
            b = [(math.inf if str(le).lower() in ("+inf", "inf") else le, c) for le, c in b]
        return cls(d.get("count", 0), d.get("p50"), d.get("p99"), b)


@dataclass
class Side:
    """One side (canary or baseline) over the window. `requests`: every request that reached
    it (answered with any status, or failed without an answer); `errors`: 5xx answers plus
    requests that failed without one. `restarts`: process restarts or crashes seen in the
    window. `journeys_passed`/`journeys_failed`: synthetic journey runs pinned to it."""
    requests: int
    errors: int
    latency: Latency | None = None
    restarts: int | None = None
    journeys_passed: int | None = None
    journeys_failed: int | None = None
    latency_by_route: dict | None = None     # route -> Latency: compared route by route

    def __post_init__(self):
        self.requests = _count(self.requests, "requests")
        self.errors = _count(self.errors, "errors")
        if self.errors > self.requests:
            raise ValueError(f"errors ({self.errors}) exceed requests ({self.requests})")
        for f in ("restarts", "journeys_passed", "journeys_failed"):
            v = getattr(self, f)
            if v is not None:
                setattr(self, f, _count(v, f))
        if (self.journeys_passed is None) != (self.journeys_failed is None):
            raise ValueError("journeys_passed and journeys_failed go together")
        if isinstance(self.latency, dict):
            self.latency = Latency.from_dict(self.latency)
        if self.latency_by_route is not None:
            if not isinstance(self.latency_by_route, dict):
                raise ValueError("latency_by_route must map routes to latencies")
            self.latency_by_route = {str(r): (v if isinstance(v, Latency) else Latency.from_dict(v))
                                     for r, v in self.latency_by_route.items()}

    @classmethod
    def from_dict(cls, d, what: str) -> "Side":
        if not isinstance(d, dict):
            raise ValueError(f"{what} must be an object, got {d!r}")
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"{what}: unknown keys {sorted(unknown)}")
        for req in ("requests", "errors"):
            if req not in d:
                raise ValueError(f"{what}: {req} is required")
        try:
            return cls(**d)
        except ValueError as e:
            raise ValueError(f"{what}: {e}") from None


@dataclass
class JudgeConfig:
    confidence: float = 0.95            # one-sided, for fail and for pass
    max_error_increase: float = 0.001   # delta: 0.1 percentage point
    nuisance_gamma: float = 0.001       # Berger-Boos: level of the baseline's interval
    max_error_rate: float = 0.05        # absolute bound: fail fast above it
    fast_confidence: float = 0.99
    p50_ratio: float = 1.5
    p99_ratio: float = 1.5
    latency_min_increase_s: float = 0.005
    latency_min_samples: int = 50
    latency_min_tail: int = 5
    latency_estimate_tail: int = 20
    max_journey_failures: int = 0
    min_journey_runs: int = 1

    def __post_init__(self):
        def prob(name, lo=0.0, hi=1.0):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo < v < hi:
                raise ValueError(f"judge config: {name} must lie strictly between {lo:g} and {hi:g}, got {v!r}")
        prob("confidence", 0.5)
        prob("fast_confidence", 0.5)
        prob("max_error_increase")
        prob("max_error_rate")
        prob("nuisance_gamma")
        if self.nuisance_gamma >= 1 - self.confidence:
            raise ValueError(f"judge config: nuisance_gamma ({self.nuisance_gamma:g}) must be below "
                             f"1 - confidence ({1 - self.confidence:g})")
        for name in ("p50_ratio", "p99_ratio"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 1:
                raise ValueError(f"judge config: {name} must be a number >= 1, got {v!r}")
        _seconds(self.latency_min_increase_s, "judge config: latency_min_increase_s")
        for name in ("latency_min_samples", "latency_min_tail", "latency_estimate_tail",
                     "max_journey_failures", "min_journey_runs"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"judge config: {name} must be a whole number >= 0, got {v!r}")

    @property
    def alpha(self) -> float:
        return round(1.0 - self.confidence, 12)

    @classmethod
    def from_dict(cls, d: dict | None) -> "JudgeConfig":
        d = d or {}
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"judge config: unknown keys {sorted(unknown)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------

@dataclass
class Check:
    name: str
    verdict: str
    summary: str                       # short, for the text line
    numbers: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, "verdict": self.verdict, "summary": self.summary, **self.numbers}


@dataclass
class Verdict:
    verdict: str
    checks: list[Check]
    config: dict
    window: dict = field(default_factory=dict)

    @property
    def reasons(self) -> list[str]:
        """What decided it: the failing checks, else the inconclusive ones."""
        want = FAIL if self.verdict == FAIL else INCONCLUSIVE
        return [f"{c.name}: {c.summary}" for c in self.checks if c.verdict == want]

    def check(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "line": self.line(), "reasons": self.reasons, "window": self.window,
                "checks": [c.to_dict() for c in self.checks], "config": self.config}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False, default=_json_default)

    def line(self) -> str:
        w = ""
        if "seconds" in self.window:
            w = f" window {self.window['seconds']:g}s"
        parts = [f"{c.name} {c.verdict}: {c.summary}" for c in self.checks if c.verdict != SKIPPED]
        return f"{self.verdict.upper()}{w} | " + " | ".join(parts)


def _json_default(o):
    raise TypeError(f"not JSON serialisable: {o!r}")


def _finite(v: float | None) -> float | None:
    """JSON has no infinity: an unbounded value is null."""
    if v is None or not math.isfinite(v):
        return None
    return v


def _pct(p: float) -> str:
    return f"{100 * p:.3g}%"


def _pp(d: float) -> str:
    """A difference of two rates, in percentage points."""
    return f"{100 * d:.3g}pp"


# --------------------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------------------

def _first_failing_count(n: int, q: float, log_limit: float) -> int | None:
    """Smallest x with log P(X >= x | n, q) <= log_limit, or None when even x = n is not."""
    if n <= 0 or log_sf(n, n, q) > log_limit:
        return None
    lo, hi = 0, n            # sf(lo) > limit (sf(0) = 1), sf(hi) <= limit
    if log_sf(0, n, q) <= log_limit:
        return 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if log_sf(mid, n, q) <= log_limit:
            hi = mid
        else:
            lo = mid
    return hi


def _requests_to_pass(rate: float, q_pass: float, log_limit: float, have: int) -> int | None:
    """About how many canary requests, at the observed error rate and with the baseline as it
    is, the non-inferiority test needs; None when that rate can never pass."""
    if q_pass >= 1.0:
        return None
    if rate >= q_pass:
        return None
    if rate == 0.0:
        return max(have, math.ceil(log_limit / math.log1p(-q_pass)))

    def ok(n: int) -> bool:
        return log_cdf(int(math.floor(rate * n)), n, q_pass) <= log_limit

    hi = max(have, 16)
    while not ok(hi):
        hi *= 2
        if hi > 10 ** 10:
            return None
    lo = hi // 2
    while hi - lo > max(1, hi // 1000):
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return max(have, hi)


def error_rate_check(c: Side, b: Side, cfg: JudgeConfig) -> Check:
    a, g, d = cfg.alpha, cfg.nuisance_gamma, cfg.max_error_increase
    a_fast = round(1.0 - cfg.fast_confidence, 12)
    nc, xc, nb, xb = c.requests, c.errors, b.requests, b.errors
    num: dict = {"canary_requests": nc, "canary_errors": xc, "baseline_requests": nb, "baseline_errors": xb,
                 "canary_rate": xc / nc if nc else None, "baseline_rate": xb / nb if nb else None,
                 "max_error_increase": d, "alpha": a, "gamma": g,
                 "max_error_rate": cfg.max_error_rate, "fast_alpha": a_fast,
                 "statistic": "canary_errors"}
    if nc == 0:
        return Check("error_rate", INCONCLUSIVE, "no canary requests yet", num)
    # fast fail: the canary alone against the absolute bound
    p_fast = sf(xc, nc, cfg.max_error_rate)
    num["p_fast"] = p_fast
    num["canary_lower"] = lower_bound(xc, nc, a - g)
    num["canary_upper"] = upper_bound(xc, nc, a - g)
    rates = f"canary {xc}/{nc} ({_pct(xc / nc)})"
    if p_fast <= a_fast:
        return Check("error_rate", FAIL,
                     f"{rates} is above the absolute bound {_pct(cfg.max_error_rate)} "
                     f"(p={p_fast:.2g} <= {a_fast:g})", num)
    if nb == 0:
        return Check("error_rate", INCONCLUSIVE, f"{rates}; no baseline requests to compare with", num)
    rates += f" vs baseline {xb}/{nb} ({_pct(xb / nb)})"
    ub = upper_bound(xb, nb, g)
    lb = lower_bound(xb, nb, g)
    q_fail = min(1.0, ub + d)
    q_pass = min(1.0, lb + d)
    p_fail = min(1.0, sf(xc, nc, q_fail) + g)
    p_pass = min(1.0, cdf(xc, nc, q_pass) + g)
    crit = _first_failing_count(nc, q_fail, math.log(a - g))
    num.update({
        "baseline_upper": ub, "baseline_lower": lb,
        "diff": xc / nc - xb / nb,
        "diff_lower": num["canary_lower"] - ub, "diff_upper": num["canary_upper"] - lb,
        "h0_fail_rate": q_fail, "p_fail": p_fail, "fail_at_errors": crit,
        "h0_pass_rate": q_pass, "p_pass": p_pass,
        "pass_needs_requests": _requests_to_pass(xc / nc, q_pass, math.log(a - g), nc),
    })
    conf = f"{100 * cfg.confidence:g}%"
    if p_fail <= a:
        return Check("error_rate", FAIL,
                     f"{rates}: canary worse by more than {_pp(d)} with {conf} confidence "
                     f"(difference >= {_pp(num['diff_lower'])}, p={p_fail:.2g})", num)
    if p_pass <= a:
        return Check("error_rate", PASS,
                     f"{rates}: canary worse by less than {_pp(d)} with {conf} confidence "
                     f"(difference <= {_pp(num['diff_upper'])}, p={p_pass:.2g})", num)
    need = num["pass_needs_requests"]
    more = (f"~{need} canary requests to pass at this rate" if need is not None
            else "this rate cannot pass against this baseline")
    fail_at = f"{crit} error{'' if crit == 1 else 's'} would fail" if crit is not None else f"no error count fails {nc} requests"
    return Check("error_rate", INCONCLUSIVE,
                 f"{rates}: need more data (p_fail={p_fail:.2g}, p_pass={p_pass:.2g}; {fail_at}; {more})", num)


def _min_latency_samples(q: float, cfg: JudgeConfig, tail: int | None = None) -> int:
    tail = cfg.latency_min_tail if tail is None else tail
    return max(cfg.latency_min_samples, math.ceil(tail / (1.0 - q) - 1e-9))


def latency_check(q: float, ratio: float, c: Latency | None, b: Latency | None, cfg: JudgeConfig,
                  alpha: float | None = None) -> Check:
    name = f"latency_p{round(q * 100)}"
    alpha = cfg.alpha if alpha is None else alpha
    if c is None and b is None:
        return Check(name, SKIPPED, "no latency data")
    need = _min_latency_samples(q, cfg)
    need_est = _min_latency_samples(q, cfg, cfg.latency_estimate_tail)
    num: dict = {"quantile": q, "ratio": ratio, "min_increase_s": cfg.latency_min_increase_s,
                 "min_samples": need, "estimate_min_samples": need_est}
    if c is None or b is None:
        return Check(name, INCONCLUSIVE, f"latency of the {'canary' if c is None else 'baseline'} missing", num)
    cq, bq = c.quantile(q), b.quantile(q)
    num.update({"canary_samples": c.count, "baseline_samples": b.count, "canary_s": cq, "baseline_s": bq})
    if bq is None or b.count < need:
        return Check(name, INCONCLUSIVE, f"baseline has {b.count} samples, needs {need}", num)
    t = max(bq * ratio, bq + cfg.latency_min_increase_s)
    num["threshold_s"] = t
    ms = (lambda v: "?" if v is None else f"{1000 * v:.3g}ms")
    desc = f"canary {ms(cq)} vs baseline {ms(bq)} (limit {ms(t)}, n={c.count})"
    if c.buckets is not None and c.count > 0:
        bound, k = c.above(t)
        p = sf(k, c.count, 1.0 - q)
        num.update({"bucket_bound_s": _finite(bound), "canary_above": k, "p_fail": p, "alpha": alpha})
        # At least latency_min_tail slow requests: slow requests come in bursts (a
        # checkpoint, a neighbour's CPU), not independently as the binomial assumes; a good
        # release measured 3 of 78 above a p99 limit (p = 0.044) in one such burst.
        if p <= alpha and k >= cfg.latency_min_tail:
            return Check(name, FAIL, f"{desc}: {k} of {c.count} slower than {ms(bound)} (p={p:.2g})", num)
    if cq is not None and c.count >= need_est and b.count >= need_est:
        if cq <= t:
            return Check(name, PASS, desc, num)
        if c.buckets is None:
            return Check(name, FAIL, desc, num)
        # The estimate is above the limit. With buckets it is an interpolation inside a
        # bucket (10-25 ms here), and a small shift of a few requests across a bound moves it
        # by milliseconds: a good release (the same build) measured note.create p50 15.5 ms
        # against 9.66 ms (limit 14.7 ms) at n = 63, both sides' medians next to the 10 ms
        # bound. So the estimate fails only when the requests behind it -- those slower
        # than t, the threshold bucket counted as spread evenly, the estimate's own
        # assumption -- are significantly more than the fraction 1 - q a quantile <= t
        # allows, by the same binomial test and tail minimum as the exact count above.
        k_est = int(math.floor(c.above_interpolated(t) + 1e-9))
        p_est = sf(k_est, c.count, 1.0 - q)
        num.update({"canary_above_estimate": k_est, "p_fail_estimate": p_est, "alpha": alpha})
        if p_est <= alpha and k_est >= cfg.latency_min_tail:
            return Check(name, FAIL, f"{desc}: about {k_est} of {c.count} slower than the limit (p={p_est:.2g})", num)
        return Check(name, INCONCLUSIVE, f"{desc}: above the limit, not significant yet "
                     f"(about {k_est} of {c.count} slower, p={p_est:.2g})", num)
    if c.count < need_est or b.count < need_est:
        return Check(name, INCONCLUSIVE, f"{desc}: the estimates need {need_est} samples a side", num)
    return Check(name, INCONCLUSIVE, f"{desc}: not significant yet", num)


def latency_by_route_check(q: float, ratio: float, c: dict, b: dict, cfg: JudgeConfig) -> Check:
    """Latency compared route by route: a canary that happens to get more writes (slower by
    nature: a synchronous commit) than the baseline is no regression, so one histogram over
    every route would mislead when a side has few sessions (measured: a canary with 3
    sessions, one a writer, had p99 431 ms against the baseline's 50 ms, and was the same
    build). Each route both sides served is checked at alpha / (number of routes)
    (Bonferroni: the chance of a false failure stays <= alpha); any failing route fails;
    pass when every route with enough samples passes and one did."""
    name = f"latency_p{round(q * 100)}"
    routes = sorted(set(c) & set(b))
    if not routes:
        return Check(name, SKIPPED if not c and not b else INCONCLUSIVE, "no route served by both sides")
    a = cfg.alpha / len(routes)
    checks = {r: latency_check(q, ratio, c[r], b[r], cfg, a) for r in routes}
    num = {"routes": {r: ch.to_dict() for r, ch in checks.items()}, "alpha_per_route": a}
    bad = [r for r, ch in checks.items() if ch.verdict == FAIL]
    if bad:
        return Check(name, FAIL, "; ".join(f"{r}: {checks[r].summary}" for r in bad), num)
    ok = [r for r, ch in checks.items() if ch.verdict == PASS]
    open_ = [r for r, ch in checks.items() if ch.verdict != PASS]
    if ok and not open_:
        return Check(name, PASS, f"{len(ok)} route(s) within limits", num)
    if ok:
        return Check(name, INCONCLUSIVE, f"{len(ok)} route(s) within limits, {len(open_)} need data "
                     f"({', '.join(open_[:3])}{', ...' if len(open_) > 3 else ''})", num)
    return Check(name, INCONCLUSIVE, f"{len(routes)} route(s), none with enough samples yet", num)


def restarts_check(c: Side, b: Side) -> Check:
    if c.restarts is None:
        return Check("restarts", SKIPPED, "not observed")
    num = {"canary_restarts": c.restarts, "baseline_restarts": b.restarts}
    if c.restarts > 0:
        return Check("restarts", FAIL, f"canary restarted or crashed {c.restarts} time(s)", num)
    return Check("restarts", PASS, "no canary restart", num)


def journeys_check(c: Side, b: Side, cfg: JudgeConfig) -> Check:
    """Without baseline journeys: more than max_journey_failures failed canary runs fail.
    With them (the same journeys run against the baseline's nodes over the window), a
    failure that the baseline shares is the environment's, not the release's (a saturated
    machine fails every vantage's login budget alike): the canary fails only when its
    failure rate is above the baseline's with the configured confidence -- the error
    rate's Berger-Boos test with no margin (U_b = the baseline's upper bound at 1 - gamma,
    p = P(X >= failed | Binomial(runs, U_b)) + gamma <= alpha). 2 of 2 failed canary runs
    against 40 clean baseline runs fail (p = 0.026); against a baseline failing half of its
    runs nothing short of many more canary failures does."""
    if c.journeys_passed is None:
        return Check("journeys", SKIPPED, "no pinned journeys")
    ok, bad = c.journeys_passed, c.journeys_failed
    num: dict = {"passed": ok, "failed": bad, "max_failures": cfg.max_journey_failures,
                 "min_runs": cfg.min_journey_runs}
    if b.journeys_passed is None:
        if bad > cfg.max_journey_failures:
            return Check("journeys", FAIL, f"{bad} of {ok + bad} pinned journeys failed", num)
        if ok >= cfg.min_journey_runs:
            return Check("journeys", PASS, f"{ok} of {ok + bad} pinned journeys passed", num)
        return Check("journeys", INCONCLUSIVE, f"{ok} pinned journeys passed, needs {cfg.min_journey_runs}", num)
    bok, bbad = b.journeys_passed, b.journeys_failed
    n, nb = ok + bad, bok + bbad
    num.update({"baseline_passed": bok, "baseline_failed": bbad})
    rates = f"canary {bad} of {n} failed vs baseline {bbad} of {nb}"
    if bad > cfg.max_journey_failures and nb > 0:
        ub = upper_bound(bbad, nb, cfg.nuisance_gamma)
        p = min(1.0, sf(bad, n, ub) + cfg.nuisance_gamma)
        num.update({"baseline_upper": ub, "p_fail": p, "alpha": cfg.alpha})
        if p <= cfg.alpha:
            return Check("journeys", FAIL, f"{rates}: the canary fails more often (p={p:.2g})", num)
        return Check("journeys", INCONCLUSIVE, f"{rates}: not more often than the baseline yet (p={p:.2g})", num)
    if bad > cfg.max_journey_failures:
        return Check("journeys", INCONCLUSIVE, f"{rates}: no baseline runs to compare with", num)
    if ok >= cfg.min_journey_runs:
        return Check("journeys", PASS, f"{rates}", num)
    return Check("journeys", INCONCLUSIVE, f"{ok} pinned journeys passed, needs {cfg.min_journey_runs}", num)


def judge(canary: Side, baseline: Side, cfg: JudgeConfig | None = None,
          window: tuple[float, float] | None = None) -> Verdict:
    """Canary against baseline over the same window [start, end] (unix seconds, for the record)."""
    cfg = cfg or JudgeConfig()
    cl, bl = canary.latency, baseline.latency
    checks = [
        error_rate_check(canary, baseline, cfg),
    ]
    if canary.latency_by_route is not None or baseline.latency_by_route is not None:
        cr, br = canary.latency_by_route or {}, baseline.latency_by_route or {}
        checks += [latency_by_route_check(0.5, cfg.p50_ratio, cr, br, cfg),
                   latency_by_route_check(0.99, cfg.p99_ratio, cr, br, cfg)]
    else:
        checks += [latency_check(0.5, cfg.p50_ratio, cl, bl, cfg),
                   latency_check(0.99, cfg.p99_ratio, cl, bl, cfg)]
    checks += [
        restarts_check(canary, baseline),
        journeys_check(canary, baseline, cfg),
    ]
    ran = [c for c in checks if c.verdict != SKIPPED]
    if any(c.verdict == FAIL for c in ran):
        v = FAIL
    elif all(c.verdict == PASS for c in ran):
        v = PASS
    else:
        v = INCONCLUSIVE
    w = {}
    if window is not None:
        start, end = window
        w = {"start": start, "end": end, "seconds": end - start}
    return Verdict(v, checks, cfg.to_dict(), w)


def judge_dict(d: dict, cfg: JudgeConfig | None = None) -> Verdict:
    """judge() on a JSON object {"canary": {...}, "baseline": {...}, "window": [start, end]}."""
    if not isinstance(d, dict):
        raise ValueError("observation must be a JSON object")
    unknown = set(d) - {"canary", "baseline", "window", "config"}
    if unknown:
        raise ValueError(f"observation: unknown keys {sorted(unknown)}")
    for k in ("canary", "baseline"):
        if k not in d:
            raise ValueError(f"observation: {k} is required")
    if cfg is None:
        cfg = JudgeConfig.from_dict(d.get("config"))
    w = d.get("window")
    if w is not None:
        if not (isinstance(w, list) and len(w) == 2):
            raise ValueError("observation: window must be [start, end]")
        w = (_seconds(w[0], "window start"), _seconds(w[1], "window end"))
        if w[1] < w[0]:
            raise ValueError("observation: window ends before it starts")
    return judge(Side.from_dict(d["canary"], "canary"), Side.from_dict(d["baseline"], "baseline"), cfg, w)


def main(argv: list[str] | None = None) -> int:
    """python3 -m continuum_ops.judge FILE|- [--json]: judge an observation (see judge_dict)."""
    import argparse
    import sys
    p = argparse.ArgumentParser(prog="continuum_ops.judge", description=main.__doc__)
    p.add_argument("file")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    try:
        if args.file == "-":
            text = sys.stdin.read()
        else:
            with open(args.file, encoding="utf-8") as f:
                text = f.read()
        v = judge_dict(json.loads(text))
    except (OSError, ValueError) as e:
        print(f"judge: {e}", file=sys.stderr)
        return 2
    print(v.to_json() if args.json else v.line())
    return {PASS: 0, INCONCLUSIVE: 3, FAIL: 1}[v.verdict]


if __name__ == "__main__":
    raise SystemExit(main())
