"""The exact rate limiter, on fake clocks only (no wall-clock assertion anywhere).

- random request patterns (workers, latencies, pauses): no 60-s window ever holds more
  than the limit, counting a slot from its start until 60 s after its answer, nor on the
  server's side (arrival anywhere between start and answer);
- the first request starts at once; N requests at limit L take about N/L minutes;
- nothing starts inside a pause, not even a worker already sleeping towards its slot
  (one thread with a sleep that is interrupted, and real threads on a virtual clock);
- ``per_minute=0`` never waits (a pause is still honoured).
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from genesys_prov.http import RateLimiter, Slot


class FakeClock:
    """Time that moves only when someone sleeps; ``during_sleep`` runs halfway through a
    sleep (another worker acting while this one sleeps); ``late`` is added to every sleep
    (a loaded machine wakes late)."""

    def __init__(self, late: float = 0.0) -> None:
        self.now = 0.0
        self.late = late
        self.slept: list[float] = []
        self.during_sleep: Callable[[], None] | None = None

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds / 2
        if self.during_sleep is not None:
            hook, self.during_sleep = self.during_sleep, None
            hook()
        self.now += seconds / 2 + self.late


@dataclass
class Run:
    """What a simulated run did: each request's (start, server arrival, answer), the
    pauses (from, until), and when the last answer came."""

    requests: list[tuple[float, float, float]] = field(default_factory=list)
    pauses: list[tuple[float, float]] = field(default_factory=list)
    end: float = 0.0


def simulate(limit: int, workers: int, total: int, latency: Callable[[], float],
             pause_at: dict[int, float] | None = None, late: float = 0.0,
             rng: random.Random | None = None) -> Run:
    """A discrete-event run of ``workers`` workers sending ``total`` requests through one
    limiter (``try_acquire``): each worker asks, waits what it is told (plus ``late``),
    asks again; an answer comes ``latency()`` after the start; the server sees the request
    at a random moment in between. ``pause_at[k]``: the answer to the k-th request is a 429
    with that ``Retry-After`` (the request is sent again)."""
    clock = FakeClock()
    limiter = RateLimiter(limit, clock=clock.time, sleep=clock.sleep)
    rng = rng or random.Random(0)
    pause_at = pause_at or {}
    run = Run()
    seq = itertools.count()
    events: list[tuple[float, int, str, int, Slot | None]] = [
        (0.0, next(seq), "ask", w, None) for w in range(workers)]
    parked: list[int] = []  # workers waiting for a running request to finish
    left = total
    sent = 0
    while events:
        now, _, kind, worker, slot = heapq.heappop(events)
        clock.now = now
        if kind == "answer":
            assert slot is not None
            slot.release()
            sent += 1
            if sent in pause_at:
                limiter.pause(pause_at[sent])
                run.pauses.append((now, now + pause_at[sent]))
                left += 1  # the throttled request is sent again
            run.end = max(run.end, now)
            for waiting in [*parked, worker]:
                heapq.heappush(events, (now, next(seq), "ask", waiting, None))
            parked.clear()
            continue
        if left == 0:
            continue
        got = limiter.try_acquire()
        if isinstance(got, Slot):
            left -= 1
            answer = now + latency()
            run.requests.append((now, rng.uniform(now, answer), answer))
            heapq.heappush(events, (answer, next(seq), "answer", worker, got))
        elif got == math.inf:
            parked.append(worker)
        else:
            heapq.heappush(events, (now + got + late, next(seq), "ask", worker, None))
    assert left == 0 and not parked, "the run did not finish"
    return run


def held_at_each_start(run: Run) -> int:
    """The most slots held when a request started (its own included): a slot is held from
    its start until 60 s after its answer."""
    starts = sorted(start for start, _, _ in run.requests)
    worst = 0
    for start in starts:
        held = sum(1 for s, _, answer in run.requests if s <= start < answer + 60)
        worst = max(worst, held)
    return worst


def max_server_window(run: Run) -> int:
    """The most server-side arrivals in any 60-s window (a sliding window ending at each
    arrival, as the Genesys emulator counts)."""
    arrivals = sorted(arrival for _, arrival, _ in run.requests)
    worst = 0
    low = 0
    for high, arrival in enumerate(arrivals):
        while arrivals[low] <= arrival - 60:
            low += 1
        worst = max(worst, high - low + 1)
    return worst


def starts_inside_pauses(run: Run) -> list[float]:
    """Starts strictly inside a pause (a start exactly at its end is allowed)."""
    return [start for start, _, _ in run.requests
            for begin, end in run.pauses if begin < start < end]


def test_the_checkers_see_a_violation():
    """The window checkers and the pause checker do catch a bad run."""
    bad = Run(requests=[(0.0, 0.0, 1.0), (30.0, 30.0, 31.0), (60.5, 60.5, 62.0)],
              pauses=[(40.0, 62.0)])
    assert held_at_each_start(bad) == 3  # the first slot is held until 61 s
    assert max_server_window(Run(requests=[(0, 0, 1), (59, 59, 60)])) == 2
    assert starts_inside_pauses(bad) == [60.5]


@pytest.mark.parametrize("seed", range(12))
def test_no_window_ever_holds_more_than_the_limit(seed):
    """Random limits, workers, latencies (some far longer than a minute) and pauses."""
    rng = random.Random(seed)
    limit = rng.choice([3, 7, 20, 60])
    workers = rng.choice([1, 4, 16, 40])
    total = rng.randint(2 * limit, 6 * limit)
    pauses = {rng.randint(1, total): rng.uniform(0.5, 30) for _ in range(rng.randint(0, 4))}

    def latency() -> float:
        return rng.choice([rng.uniform(0.001, 0.5), rng.uniform(0.5, 20), rng.uniform(20, 90)])

    run = simulate(limit, workers, total, latency, pauses, late=rng.uniform(0, 0.01), rng=rng)
    assert len(run.requests) == total + len(pauses)
    assert held_at_each_start(run) <= limit
    assert max_server_window(run) <= limit
    assert starts_inside_pauses(run) == []


def test_the_window_waits_for_slow_answers():
    """With a limit of 2 and answers that take 50 s, the third request waits until 60 s
    after the first answer (110 s), not 60 s after the first start."""
    run = simulate(2, 3, 3, lambda: 50.0)
    assert sorted(start for start, _, _ in run.requests) == [0.0, 30.0, 110.0]


def test_the_first_request_starts_at_once():
    clock = FakeClock()
    limiter = RateLimiter(300, clock=clock.time, sleep=clock.sleep)
    slot = limiter.acquire()
    assert (slot.started, clock.slept) == (0.0, [])


def test_n_requests_take_about_n_over_l_minutes():
    """500 requests at 1,200/min with 20 ms answers, on a machine that wakes 5 ms late:
    done by the floor (25 s) plus one latency, and within 1.05 × the floor."""
    floor = 500 / 1200 * 60
    run = simulate(1200, 4, 500, lambda: 0.020, late=0.005)
    assert run.requests[0][0] == 0.0
    assert run.end <= floor + 0.020 + 1e-9
    assert run.end / floor <= 1.05


def test_one_worker_blocking_keeps_the_grid_when_waking_late():
    """The blocking ``acquire`` loop: one worker, 20 ms answers, sleeps 5 ms late."""
    clock = FakeClock(late=0.005)
    limiter = RateLimiter(1200, clock=clock.time, sleep=clock.sleep)
    for _ in range(500):
        with limiter.acquire():
            clock.now += 0.020
    assert clock.now <= 25.0 + 0.020 + 1e-9


def test_a_worker_sleeping_towards_its_slot_does_not_start_inside_a_pause():
    """Another worker's 429 pauses everyone while this one sleeps towards its slot: it
    re-checks on waking and waits for the pause's end."""
    clock = FakeClock()
    limiter = RateLimiter(60, clock=clock.time, sleep=clock.sleep)
    limiter.acquire().release()
    clock.during_sleep = lambda: limiter.pause(10)  # at 0.5 s, until 10.5 s
    slot = limiter.acquire()
    assert slot.started == pytest.approx(10.5)


class VirtualClock:
    """A clock shared by real threads that moves only when every worker sleeps (then to
    the earliest wake-up): deterministic times whatever the machine's load."""

    def __init__(self, workers: int) -> None:
        self.now = 0.0
        self._cond = threading.Condition()
        self._running = workers
        self._wakes: list[float] = []

    def time(self) -> float:
        with self._cond:
            return self.now

    def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with self._cond:
            wake = self.now + seconds
            heapq.heappush(self._wakes, wake)
            self._running -= 1
            self._advance()
            while self.now < wake:
                self._cond.wait()

    def done(self) -> None:
        """A worker has finished: it no longer holds the clock back."""
        with self._cond:
            self._running -= 1
            self._advance()

    def _advance(self) -> None:
        if self._running == 0 and self._wakes:
            self.now = max(self.now, self._wakes[0])
            while self._wakes and self._wakes[0] <= self.now:
                heapq.heappop(self._wakes)
                self._running += 1
            self._cond.notify_all()


def test_threads_sleeping_towards_their_slots_respect_a_pause():
    """Four real threads through one limiter (600/min, 30 ms answers); the 10th answer is
    a 429 with Retry-After 5: the others, asleep towards slots granted before it, start
    only after the pause."""
    workers, each = 4, 30
    clock = VirtualClock(workers)
    limiter = RateLimiter(600, clock=clock.time, sleep=clock.sleep)
    starts: list[float] = []
    pauses: list[tuple[float, float]] = []
    answered = itertools.count(1)
    lock = threading.Lock()

    def worker() -> None:
        try:
            for _ in range(each):
                with limiter.acquire():
                    with lock:
                        starts.append(clock.time())
                    clock.sleep(0.030)
                if next(answered) == 10:
                    now = clock.time()
                    limiter.pause(5)
                    pauses.append((now, now + 5))
        finally:
            clock.done()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)  # a hang guard only: no timing is asserted
    assert not any(thread.is_alive() for thread in threads)
    assert len(starts) == workers * each and len(pauses) == 1
    begin, end = pauses[0]
    assert [s for s in starts if begin < s < end] == []
    assert any(s == pytest.approx(end) for s in starts)  # work resumed at the pause's end


def test_zero_disables_the_limit_but_not_a_pause():
    clock = FakeClock()
    limiter = RateLimiter(0, clock=clock.time, sleep=clock.sleep)
    held = [limiter.acquire() for _ in range(1000)]  # never released: still no wait
    for slot in held[:500]:
        slot.release()
    for _ in range(1000):
        with limiter.acquire():
            pass
    assert clock.slept == []
    limiter.pause(5)
    limiter.acquire()
    assert clock.slept == [5.0]


def test_release_is_idempotent_and_a_running_slot_blocks():
    """A slot released twice counts once; while the only slot runs, the wait is
    unbounded (until a release), and after it the slot is held 60 s more."""
    clock = FakeClock()
    limiter = RateLimiter(1, clock=clock.time, sleep=clock.sleep)
    slot = limiter.acquire()
    assert limiter.try_acquire() == math.inf
    clock.now = 3.0
    slot.release()
    slot.release()
    assert limiter.try_acquire() == pytest.approx(60.0)  # 63 s (answer + 60) - 3 s


def test_the_rate_check_counts_windows_and_runs_a_small_sync():
    """The measurement behind the benchmark's rate figures: the window counter, and a
    small real run (20 users at 600/min, one injected 429) with nothing sent while paused
    and no refusal by the emulator's own limit (no timing is asserted)."""
    from genesys_prov.sandbox.ratecheck import max_in_window, rate_limited_run

    assert max_in_window([0.0, 30.0, 59.9, 60.0, 119.95]) == 3
    assert max_in_window([0.0, 0.5, 1.0], 1.0) == 2
    figures = rate_limited_run(users=20, per_minute=600, pauses=1, pause_seconds=1)
    assert figures["requests"] > 20 and figures["injected_429s"] == 1
    assert figures["pauses"] == 1 and figures["sent_while_paused"] == 0
    assert figures["over_limit_429s"] == 0
    assert figures["max_in_any_60s_window"] <= 600
