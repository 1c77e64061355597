"""The statistics of `bench`: discovery@k of each method, its 90% bootstrap band, the attempts (and seconds)
ratios, and censored mean time to first success. numpy only; no torch, no models.

docs/reference/SDPO.md sections 5 and 6. The conventions, stated once here and in every output:

- **best-of-k** (independent samples): from a pool of n samples of which c pass, discovery@k is the unbiased
  pass@k = 1 - C(n-c, k)/C(n, k), computed as the stable product 1 - prod_{i=n-c+1..n} (1 - k/i) (never a
  binomial coefficient). Defined for k <= n.
- **sequential methods** (sdpo, multi-turn): a run (one seed) finds its first success in some step whose batch
  of G attempts holds m successes; the order inside a batch is arbitrary, so after s attempts before that
  batch and j into it the run is credited with P(first success among the first j of G) =
  1 - C(G-m, j)/C(G, j) (= the same product). discovery@k = the mean of that credit over seeds, then problems.
- **seconds**: a run's loop time (generation + grading + updates, the one-off model load excluded) until the
  end of each step; inside a step time is credited linearly (j of G attempts after j/G of the step's time).
  best-of-k's k attempts cost k x the pool's loop seconds per attempt.
- **bootstrap** (90%, percentile): resample problems with replacement, then within each chosen problem its
  seeds with replacement (a best-of-k pool: its n samples with replacement). Every method is resampled with
  the same problems, so ratios are paired.
- **censoring**: mean attempts to first success is the restricted mean E[min(T, B)] = sum_{k=0}^{B-1}
  (1 - discovery@k): a run without a success counts as the budget B (the figure is a lower bound when any
  run is censored; the count of censored runs is reported beside it). In seconds likewise, up to a horizon
  every method reaches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

CONVENTIONS = (
    "best-of-k: unbiased pass@k from its pool, 1 - C(n-c,k)/C(n,k) as a product; "
    "sdpo and multi-turn: per seed, within the first successful batch of G attempts with m successes, "
    "j attempts in are credited 1 - C(G-m,j)/C(G,j) (order inside a batch is arbitrary), averaged over seeds then "
    "problems; seconds: each run's loop time (generation + grading + updates, model load excluded), linear "
    "inside a step; 90% percentile bootstrap over problems, then seeds (pool samples) within a problem; "
    "mean attempts to first success: restricted mean sum_{k<B}(1 - discovery@k), an unsolved run counts as B"
)


# ---------------------------------------------------------------------------------------------
# Estimators


def miss_curve(n: int, c: int, kmax: int) -> np.ndarray:
    """P(no success among k draws without replacement from n items of which c succeed), k = 0..kmax.

    = C(n-c, k)/C(n, k) = prod_{i=0}^{k-1} (n-c-i)/(n-i), a running product of factors in [0, 1]: no overflow at
    any n (the paper's n = 2944). 0 once k > n - c. kmax may not exceed n."""
    if not 0 <= c <= n or kmax > n:
        raise ValueError(f"need 0 <= c <= n and kmax <= n, got n={n}, c={c}, kmax={kmax}")
    i = np.arange(kmax, dtype=np.float64)
    factors = np.clip((n - c - i) / (n - i), 0.0, 1.0)
    return np.concatenate([[1.0], np.cumprod(factors)])


def pass_at_k(n: int, c: int, kmax: int | None = None) -> np.ndarray:
    """Unbiased pass@k for k = 0..kmax (default n) from n samples with c successes (SDPO.md section 5)."""
    return 1.0 - miss_curve(n, c, n if kmax is None else kmax)


def sequential_curve(first_batch_start: int | None, g: int, m: int, budget: int) -> np.ndarray:
    """One run's credited discovery, k = 0..budget: 0 before the first successful batch (which starts after
    `first_batch_start` attempts, holds `g` attempts and `m` successes), the within-batch credit inside it,
    1 after it. first_batch_start None: no success within the budget (0 throughout)."""
    out = np.zeros(budget + 1)
    if first_batch_start is None:
        return out
    inside = 1.0 - miss_curve(g, m, g)[1:]  # j = 1..g
    lo = first_batch_start + 1
    hi = min(first_batch_start + g, budget)
    out[lo : hi + 1] = inside[: hi - lo + 1]
    out[hi + 1 :] = 1.0
    return out


def first_k(curve: np.ndarray, p: float) -> float:
    """The fewest attempts k with curve[k] >= p (curve indexed by k); inf when never reached."""
    hit = np.nonzero(curve >= p - 1e-12)[0]
    return float(hit[0]) if hit.size else float("inf")


def restricted_mean(curve: np.ndarray, budget: int) -> float:
    """E[min(T, B)] = sum_{k=0}^{B-1} P(T > k) = sum_{k<B} (1 - curve[k])."""
    return float(np.sum(1.0 - curve[:budget]))


# ---------------------------------------------------------------------------------------------
# Time


def time_curve(step_ends: Sequence[float], step_sizes: Sequence[int], success: tuple[int, int] | None,
               grid: np.ndarray) -> np.ndarray:
    """One sequential run's credited discovery at each time of `grid` (seconds of loop time).

    step_ends: cumulative loop seconds at the end of each step; step_sizes: attempts per step; success: (step
    index of the first success, m successes in it) or None. NaN past the run's last step when it had no success
    (what would have happened later is not known)."""
    out = np.zeros(grid.shape)
    if success is None:
        out[grid > (step_ends[-1] if step_ends else 0.0)] = np.nan
        return out
    s, m = success
    t0 = step_ends[s - 1] if s > 0 else 0.0
    t1, g = step_ends[s], step_sizes[s]
    inside = 1.0 - miss_curve(g, m, g)
    j = np.floor(np.clip((grid - t0) / max(t1 - t0, 1e-12), 0.0, 1.0) * g + 1e-9).astype(int)
    return np.where(grid >= t1, 1.0, inside[np.clip(j, 0, g)])


def pool_time_curve(n: int, c: int, seconds_per_attempt: float, grid: np.ndarray, kmax: int | None = None) -> np.ndarray:
    """best-of-k against time: k = floor(t / seconds per attempt) attempts' pass@k; NaN past kmax (default: the
    pool's n; a bench passes its budget when the pool is larger)."""
    kmax = n if kmax is None else min(kmax, n)
    k = np.floor(grid / max(seconds_per_attempt, 1e-12) + 1e-9).astype(int)
    curve = pass_at_k(n, c, kmax)
    return np.where(k > kmax, np.nan, curve[np.clip(k, 0, kmax)])


# ---------------------------------------------------------------------------------------------
# Bootstrap


@dataclass
class MethodData:
    """One method's per-problem data on a common axis: curves[p] is an (seeds, points) array. For a best-of-k
    pool, pools[p] = (n, c) and curves[p] its one curve (resampled through the pool instead of over seeds)."""

    curves: list[np.ndarray]
    pools: list[tuple[int, int]] | None = None
    pool_curve: object = None  # (problem index, n, c) -> curve on the axis, for resampled pools
    extra: dict[str, object] = field(default_factory=dict)


def bootstrap(methods: dict[str, MethodData], reps: int = 2000, seed: int = 0, chunk: int = 100) -> dict[str, np.ndarray]:
    """Replicates of each method's mean curve: an array (reps, points) per method.

    Each replicate draws P problems with replacement (the same draw for every method: paired), then for each
    drawn problem its S seeds with replacement (a pool: c* ~ Binomial(n, c/n), its n samples redrawn), and
    averages. Vectorised in chunks of replicates."""
    rng = np.random.default_rng(seed)
    n_problems = {len(d.curves) for d in methods.values()}
    if len(n_problems) != 1:
        raise ValueError("every method needs the same problems")
    (P,) = n_problems
    pick = rng.integers(0, P, size=(reps, P))
    out = {}
    for name, d in methods.items():
        points = d.curves[0].shape[-1]
        res = np.zeros((reps, points))
        if d.pools is not None:
            n = np.array([x[0] for x in d.pools])[pick]
            c = np.array([x[1] for x in d.pools])[pick]
            c_star = rng.binomial(n, np.where(n > 0, c / np.maximum(n, 1), 0.0))
            cache: dict[tuple[int, int], np.ndarray] = {}
            for r in range(reps):
                acc = np.zeros(points)
                for p, cs in zip(pick[r], c_star[r]):
                    key = (int(p), int(cs))
                    if key not in cache:
                        cache[key] = d.pool_curve(int(p), d.pools[int(p)][0], int(cs))  # type: ignore[operator]
                    acc += cache[key]
                res[r] = acc / P
        else:
            S = np.array([c.shape[0] for c in d.curves])
            smax = int(S.max())
            stack = np.full((P, smax, points), 0.0)
            for p, cv in enumerate(d.curves):
                stack[p, : cv.shape[0]] = cv
            u = rng.random((reps, P, smax))
            chunk = max(1, min(chunk, int(2e7 // (P * smax * points))))  # ~160 MB of draws at most
            for lo in range(0, reps, chunk):
                pk = pick[lo : lo + chunk]  # (r, P)
                sp = S[pk]  # seeds of each drawn problem
                idx = np.floor(u[lo : lo + chunk] * sp[..., None]).astype(int)  # (r, P, smax), < sp
                valid = np.arange(smax)[None, None, :] < sp[..., None]
                draws = stack[pk[..., None], idx]  # (r, P, smax, points)
                per_problem = np.where(valid[..., None], draws, 0.0).sum(axis=2) / sp[..., None]
                res[lo : lo + chunk] = per_problem.mean(axis=1)
        out[name] = res
    return out


def interval(replicates: np.ndarray, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval per point (nearest rank, so infinite and NaN-free values work alike)."""
    s = np.sort(replicates, axis=0)
    reps = s.shape[0]
    lo = s[int(np.floor((1 - level) / 2 * (reps - 1)))]
    hi = s[int(np.ceil((1 + level) / 2 * (reps - 1)))]
    return lo, hi


def quantiles(values: Sequence[float], level: float = 0.9) -> tuple[float, float]:
    """The same nearest-rank percentile interval for a scalar statistic (values may be inf)."""
    v = np.sort(np.asarray(values, dtype=np.float64))
    return (float(v[int(np.floor((1 - level) / 2 * (len(v) - 1)))]),
            float(v[int(np.ceil((1 + level) / 2 * (len(v) - 1)))]))
