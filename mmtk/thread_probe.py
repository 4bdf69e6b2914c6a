"""The model's part of the thread policy: under ``threads: auto``, time a few training steps
of the stage's own model at 1, 2, 4 ... threads (up to what the machine has idle) and keep the
fastest.

Why measure: whether a second thread helps depends on the model, not only on the machine. On
an idle 2-core machine the frame-level LSTM trains 1.3x faster with 2 threads, while the
default benchmark's small MLPs run ~10 % slower (each op is too short to split; see
benchmarks/threads.py and the README). A rule from parameter counts got these wrong both ways
(the autoencoder imputer gains, CM-ARR, with more weights, loses), so the probe times the real
step, on a throwaway copy of the model and optimizer, with the random streams left as they
were: the run trains exactly as it would have with the chosen count given by hand.

More threads must win by ``MIN_GAIN`` on the median round, and in every round, to be taken:
fewer threads leave cores to everyone else, and a smaller or inconsistent gain is the probe's
noise. Rounds last about ``TARGET_SECONDS`` each, so a model whose steps take a millisecond is
timed over tens of steps rather than a few (with 10 ms rounds the baseline's 1 ms steps once
picked 2 threads that cost it 30 %). The result is cached per model shape in the process, so
the trials of a run (and stages with the same model) probe once.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Hashable

MIN_GAIN = 0.10          # more threads must be >= 10 % faster per step (median round)
TARGET_SECONDS = 0.1     # each timed round runs enough steps to last about this long
MAX_STEPS = 100          # ... but no more steps than this
ROUNDS = 5               # timed rounds per count, alternating the order of the counts

@dataclass(frozen=True)
class ProbeResult:
    count: int                          # the thread count chosen
    ms_per_step: dict[int, float]       # what each candidate count took (median round)
    cached: bool = False                # reused from an earlier probe of the same model shape

    def note(self, limit: int) -> str:
        times = ", ".join(f"{c}: {ms:.2f}" for c, ms in self.ms_per_step.items())
        how = "as measured earlier for this model" if self.cached else "measured on this model"
        return (f"threads: {self.count} of {limit} idle core(s) per process, {how} "
                f"(ms per training step by thread count: {times})")


_cache: dict[Hashable, ProbeResult] = {}


def candidates(limit: int) -> list[int]:
    """1, 2, 4 ... below ``limit``, then ``limit`` itself."""
    counts, c = [], 1
    while c < limit:
        counts.append(c)
        c *= 2
    return [*counts, max(1, limit)]


def choose_count(rounds: dict[int, list[float]], min_gain: float = MIN_GAIN) -> int:
    """The fewest threads that no larger count clearly beats. ``rounds[c]`` holds the ms per
    step of each timed round at ``c`` threads (round i of every count ran back to back).
    Walking up from 1, a count is taken only when its median round is ``min_gain`` faster than
    the count held so far and it was faster in every single round."""
    counts = sorted(rounds)
    held = counts[0]
    for c in counts[1:]:
        clear = statistics.median(rounds[c]) < (1 - min_gain) * statistics.median(rounds[held])
        every = all(a < b for a, b in zip(rounds[c], rounds[held]))
        if clear and every:
            held = c
    return held


def measure(step: Callable[[], None], counts: list[int]) -> dict[int, list[float]]:
    """Milliseconds per call of ``step`` in each of ``ROUNDS`` timed rounds at each thread
    count, after two warm-up calls per count; the rounds alternate the order of the counts,
    so a change of machine load between rounds hits every count alike."""
    import torch

    first = time.perf_counter()
    for c in counts:
        torch.set_num_threads(c)
        step()
        step()
    warm = (time.perf_counter() - first) / (2 * len(counts))
    n = max(1, min(MAX_STEPS, math.ceil(TARGET_SECONDS / max(warm, 1e-6))))
    rounds: dict[int, list[float]] = {c: [] for c in counts}
    for r in range(ROUNDS):
        for c in (counts if r % 2 == 0 else counts[::-1]):
            torch.set_num_threads(c)
            started = time.perf_counter()
            for _ in range(n):
                step()
            rounds[c].append(1000 * (time.perf_counter() - started) / n)
    return rounds


def settle(key: Hashable, limit: int, make_step: Callable[[], Callable[[], None]]) -> ProbeResult:
    """Choose and set the thread count for the model ``key`` names (cached per process);
    ``make_step`` builds the step to time, and is called only when ``key`` is not cached."""
    import torch

    if key in _cache:
        result = _cache[key]
        torch.set_num_threads(result.count)
        return ProbeResult(result.count, result.ms_per_step, cached=True)
    rounds = measure(make_step(), candidates(limit))
    result = ProbeResult(choose_count(rounds), {c: statistics.median(v) for c, v in rounds.items()})
    torch.set_num_threads(result.count)
    _cache[key] = result
    return result


def clear_cache() -> None:
    _cache.clear()
