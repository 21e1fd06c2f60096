"""In-process token bucket and daily quota: exact arithmetic with a fake clock, threads."""

from __future__ import annotations

import math
import threading

import pytest
from tests.gateway.conftest import FakeClock

from warden.errors import ConfigError
from warden.gateway.errors import RateLimited
from warden.gateway.ratelimit import (
    DAY_S,
    Decision,
    InProcessLimiter,
    RateLimiter,
    RatePlan,
    enforce,
    plans_from_config,
    rate_limit_headers,
    retry_after_header,
    step,
)


def limiter(clock: FakeClock) -> InProcessLimiter:
    return InProcessLimiter(clock=clock, wall_clock=clock)


def test_burst_then_refusal_then_exact_refill(fake_clock: FakeClock) -> None:
    lim, plan = limiter(fake_clock), RatePlan(rate=2.0, burst=4)
    got = [lim.check("k", plan) for _ in range(4)]
    assert [d.allowed for d in got] == [True] * 4
    assert [d.remaining for d in got] == [3, 2, 1, 0]
    refused = lim.check("k", plan)
    assert (refused.allowed, refused.reason, refused.retry_after_s) == (False, "rate", 0.5)
    fake_clock.advance(0.25)  # half a token
    assert lim.check("k", plan).retry_after_s == pytest.approx(0.25, abs=1e-9)
    fake_clock.advance(0.25)  # exactly one token
    assert lim.check("k", plan).allowed
    assert not lim.check("k", plan).allowed


def test_refill_is_capped_at_burst(fake_clock: FakeClock) -> None:
    lim, plan = limiter(fake_clock), RatePlan(rate=10.0, burst=3)
    for _ in range(3):
        lim.check("k", plan)
    fake_clock.advance(3600)
    got = [lim.check("k", plan).allowed for _ in range(4)]
    assert got == [True, True, True, False]


def test_batch_cost_consumes_rows_and_too_big_is_never_admitted(fake_clock: FakeClock) -> None:
    lim, plan = limiter(fake_clock), RatePlan(rate=1.0, burst=10, daily_quota=100)
    assert lim.check("k", plan, cost=7).remaining == 3
    short = lim.check("k", plan, cost=4)
    assert (short.allowed, short.reason, short.retry_after_s) == (False, "rate", 1.0)
    never = lim.check("k", plan, cost=11)
    assert (never.allowed, never.reason, never.retry_after_s) == (False, "cost", None)
    assert "Retry-After" not in rate_limit_headers(never)


def test_refusal_consumes_nothing(fake_clock: FakeClock) -> None:
    lim, plan = limiter(fake_clock), RatePlan(rate=1.0, burst=2, daily_quota=5)
    lim.check("k", plan, cost=2)
    for _ in range(10):
        assert not lim.check("k", plan).allowed
    fake_clock.advance(2.0)
    ok = lim.check("k", plan, cost=2)
    assert ok.allowed and ok.quota_remaining == 1


def test_keys_are_independent(fake_clock: FakeClock) -> None:
    lim, plan = limiter(fake_clock), RatePlan(rate=1.0, burst=1)
    assert lim.check("a", plan).allowed
    assert not lim.check("a", plan).allowed
    assert lim.check("b", plan).allowed


def test_daily_quota_resets_at_utc_midnight() -> None:
    midnight = 20_000 * DAY_S  # a UTC midnight
    clock = FakeClock(midnight - 1.5)
    lim, plan = limiter(clock), RatePlan(rate=100.0, burst=100, daily_quota=3)
    assert [lim.check("k", plan).quota_remaining for _ in range(3)] == [2, 1, 0]
    spent = lim.check("k", plan)
    assert (spent.allowed, spent.reason, spent.retry_after_s) == (False, "quota", 1.5)
    assert rate_limit_headers(spent)["Retry-After"] == "2"
    clock.advance(1.0)
    assert not lim.check("k", plan).allowed  # 0.5 s before midnight
    clock.advance(0.5)  # exactly midnight: a new day
    fresh = lim.check("k", plan)
    assert fresh.allowed and fresh.quota_remaining == 2


def test_remaining_is_capped_by_quota(fake_clock: FakeClock) -> None:
    lim = limiter(fake_clock)
    assert lim.check("k", RatePlan(rate=1.0, burst=50, daily_quota=5)).remaining == 4


def test_threads_never_over_admit() -> None:
    lim = InProcessLimiter()
    plan = RatePlan(rate=1e-6, burst=100)  # refill is negligible during the test
    admitted: list[int] = []
    lock = threading.Lock()

    def hammer() -> None:
        n = sum(lim.check("shared", plan).allowed for _ in range(60))
        with lock:
            admitted.append(n)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(admitted) == 100


def test_idle_full_keys_are_pruned(fake_clock: FakeClock) -> None:
    lim = InProcessLimiter(clock=fake_clock, wall_clock=fake_clock, prune_every=2)
    plan = RatePlan(rate=1.0, burst=1)
    lim.check("old", plan)
    fake_clock.advance(2 * DAY_S)
    lim.check("new", plan)  # second call prunes
    assert set(lim._states) == {"new"}


def test_step_starts_full_and_ignores_clock_going_back() -> None:
    plan = RatePlan(rate=1.0, burst=2)
    d1, s1 = step(None, plan, 1, now=100.0, wall=100.0)
    assert d1.allowed and s1.tokens == 1.0
    d2, s2 = step(s1, plan, 1, now=50.0, wall=100.0)
    assert d2.allowed and s2.tokens == 0.0


def test_protocol_and_async_check(fake_clock: FakeClock) -> None:
    import asyncio

    lim = limiter(fake_clock)
    assert isinstance(lim, RateLimiter)
    assert asyncio.run(lim.acheck("k", RatePlan(1.0, 1))).allowed


@pytest.mark.parametrize(
    ("seconds", "header"), [(0.0, "1"), (0.2, "1"), (1.0, "1"), (1.01, "2"), (59.5, "60")]
)
def test_retry_after_is_a_whole_number_rounded_up(seconds: float, header: str) -> None:
    assert retry_after_header(seconds) == header


def test_enforce_maps_refusals_to_429() -> None:
    ok = Decision(True, 0.0, 3, None)
    assert enforce(ok) is ok
    with pytest.raises(RateLimited, match="rate limit exceeded") as info:
        enforce(Decision(False, 2.2, 0, None, "rate"))
    assert info.value.status_code == 429
    assert info.value.headers == {"RateLimit-Remaining": "0", "Retry-After": "3"}
    with pytest.raises(RateLimited, match="costs 300 units"):
        enforce(Decision(False, None, 0, None, "cost"), cost=300)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate": 0, "burst": 1}, "rate must be a finite number > 0"),
        ({"rate": math.inf, "burst": 1}, "rate must be a finite number > 0"),
        ({"rate": 1, "burst": 0}, "burst must be an integer >= 1"),
        ({"rate": 1, "burst": 1.5}, "burst must be an integer >= 1"),
        ({"rate": 1, "burst": 1, "daily_quota": 0}, "daily_quota must be an integer >= 1"),
    ],
)
def test_bad_plans_are_refused(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RatePlan(**kwargs)  # type: ignore[arg-type]


def test_bad_cost_is_refused(fake_clock: FakeClock) -> None:
    with pytest.raises(ConfigError, match="cost must be an integer >= 1, found 0"):
        limiter(fake_clock).check("k", RatePlan(1.0, 1), cost=0)


def test_plans_from_config() -> None:
    plans = plans_from_config(
        {"free": {"rate": 1, "burst": 5, "daily_quota": 1000}, "pro": {"rate": 50, "burst": 256}}
    )
    assert plans["free"] == RatePlan(1.0, 5, 1000)
    assert plans["pro"].daily_quota is None
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['brust'\]"):
        plans_from_config({"x": {"rate": 1, "brust": 5}})
    with pytest.raises(ConfigError, match=r"missing field\(s\) \['burst'\]"):
        plans_from_config({"x": {"rate": 1}})
    with pytest.raises(ConfigError, match="non-empty table"):
        plans_from_config({})
