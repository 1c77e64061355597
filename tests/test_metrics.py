"""metrics.py against brute force: the unbiased pass@k estimator against every subset, the within-batch
crediting against every ordering, the bootstrap's coverage on synthetic data with a known answer, the
censored mean, the time curves."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys

import numpy as np
import pytest

from sdpo_discover import metrics


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_equals_the_share_of_subsets_holding_a_success(n: int) -> None:
    for c in range(n + 1):
        outcomes = [1] * c + [0] * (n - c)
        est = metrics.pass_at_k(n, c)
        assert est[0] == 0.0
        for k in range(1, n + 1):
            subsets = list(itertools.combinations(range(n), k))
            brute = sum(any(outcomes[i] for i in s) for s in subsets) / len(subsets)
            assert est[k] == pytest.approx(brute, abs=1e-12), (n, c, k)


def test_pass_at_k_is_stable_at_the_papers_pool_size() -> None:
    n, c = 2944, 3
    est = metrics.pass_at_k(n, c, 2750)
    exact = 1 - math.exp(math.lgamma(n - c + 1) - math.lgamma(n - c - 2750 + 1)
                         - math.lgamma(n + 1) + math.lgamma(n - 2750 + 1))
    assert np.isfinite(est).all() and est[2750] == pytest.approx(exact, rel=1e-9)
    assert np.all(np.diff(est) >= 0) and metrics.pass_at_k(n, 0, 2750)[-1] == 0.0
    with pytest.raises(ValueError):
        metrics.pass_at_k(5, 6)


@pytest.mark.parametrize(("g", "m"), [(4, 1), (5, 2), (6, 3), (5, 5)])
def test_within_batch_crediting_equals_the_mean_over_orderings(g: int, m: int) -> None:
    """A run whose first successful batch (after s attempts) holds m successes among g: averaged over every
    order of that batch, the probability that the first success is within the first j attempts."""
    s, budget = 8, 20
    curve = metrics.sequential_curve(s, g, m, budget)
    batch = [1] * m + [0] * (g - m)
    orders = list(itertools.permutations(batch))
    for k in range(budget + 1):
        j = k - s
        brute = (0.0 if j <= 0 else 1.0 if j >= g else
                 sum(any(o[:j]) for o in orders) / len(orders))
        assert curve[k] == pytest.approx(brute, abs=1e-12), k
    assert metrics.sequential_curve(None, g, m, budget).sum() == 0.0
    # a successful batch cut by the budget: credited up to the budget only
    assert metrics.sequential_curve(18, 4, 1, 20)[-1] == pytest.approx(0.5)


def test_censored_mean_counts_an_unsolved_run_as_the_budget() -> None:
    B = 10
    solved_at_3 = metrics.sequential_curve(2, 1, 1, B)  # batches of one: first success is attempt 3
    never = metrics.sequential_curve(None, 1, 0, B)
    assert metrics.restricted_mean(solved_at_3, B) == 3.0
    assert metrics.restricted_mean(never, B) == B
    assert metrics.restricted_mean((solved_at_3 + never) / 2, B) == (3 + B) / 2  # linear in the curve
    # best-of-k: E[min(T, B)] of sampling without replacement, checked against its own definition
    n, c = 12, 2
    curve = metrics.pass_at_k(n, c, B)
    assert metrics.restricted_mean(curve, B) == pytest.approx(sum(1 - curve[k] for k in range(B)))
    assert metrics.first_k(solved_at_3, 1.0) == 3 and metrics.first_k(never, 0.5) == math.inf


def test_time_curves_credit_a_step_linearly_and_stop_at_an_unsolved_runs_end() -> None:
    grid = np.array([0.0, 5.0, 10.0, 12.5, 15.0, 20.0, 30.0])
    # steps of 4 attempts ending at 10 s and 20 s; the second holds 2 successes
    t = metrics.time_curve([10.0, 20.0], [4, 4], (1, 2), grid)
    batch = metrics.sequential_curve(4, 4, 2, 8)
    assert t.tolist() == [0.0, 0.0, 0.0, batch[5], batch[6], 1.0, 1.0]
    u = metrics.time_curve([10.0, 20.0], [4, 4], None, grid)
    assert u[:6].tolist() == [0.0] * 6 and np.isnan(u[6])
    pool = metrics.pool_time_curve(8, 2, 2.5, grid)  # 2.5 s per attempt: k = t / 2.5
    ref = metrics.pass_at_k(8, 2)
    assert pool[:6].tolist() == [ref[0], ref[2], ref[4], ref[5], ref[6], ref[8]] and np.isnan(pool[6])


def test_the_bootstrap_interval_covers_the_true_value_about_90_percent_of_the_time() -> None:
    """Synthetic benches with a known answer: each problem's per-seed success probability q ~ Beta(2, 3) (the
    population's discovery probability is 0.4); 12 problems x 4 seeds per bench. Over 300 benches the 90%
    interval should hold 0.4 in 90% of them; the two-stage percentile bootstrap is known to run slightly
    wide or narrow, so the test accepts 83-97% (a binomial 99.9% band around 0.9 with 300 benches is about
    +-5.7 points)."""
    rng = np.random.default_rng(7)
    truth, hits, benches = 0.4, 0, 300
    for b in range(benches):
        q = rng.beta(2, 3, size=12)
        curves = [np.stack([[0.0, float(rng.random() < qi)] for _ in range(4)]) for qi in q]
        reps = metrics.bootstrap({"m": metrics.MethodData(curves)}, reps=400, seed=b)["m"]
        lo, hi = metrics.interval(reps)
        hits += lo[1] <= truth <= hi[1]
    assert 0.83 <= hits / benches <= 0.97, hits / benches


def test_the_bootstrap_of_a_pool_redraws_its_samples_and_is_paired_across_methods() -> None:
    pools = [(20, 5), (20, 0)]
    curve = lambda p, n, c: metrics.pass_at_k(n, c, 4)  # noqa: E731
    data = {"best-of-k": metrics.MethodData([curve(0, *pools[0])[None], curve(1, *pools[1])[None]], pools, curve),
            "sdpo": metrics.MethodData([np.ones((3, 5)), np.zeros((3, 5))])}
    reps = metrics.bootstrap(data, reps=500, seed=0)
    # the second problem never passes: a replicate drawing problem 0 twice has sdpo 1.0, problem 1 twice 0.0
    assert set(np.unique(reps["sdpo"][:, 1])) == {0.0, 0.5, 1.0}
    draws_both_zero = reps["sdpo"][:, 1] == 0.0
    assert (reps["best-of-k"][draws_both_zero] == 0.0).all()  # paired: the same problems in both methods
    assert 0 < reps["best-of-k"][:, 1].std()  # c* varies from replicate to replicate


def test_metrics_import_no_torch() -> None:
    code = "import sys, sdpo_discover.metrics, sdpo_discover.results; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
