"""The Redis limiter: same answers as the in-process one, atomic across clients, fail closed."""

from __future__ import annotations

import asyncio
import random
import threading
import uuid

import pytest
from tests.gateway.conftest import FakeClock

from warden.errors import ConfigError
from warden.gateway.errors import BackendUnavailable
from warden.gateway.ratelimit import DAY_S, Decision, InProcessLimiter, RateLimiter, RatePlan

redis = pytest.importorskip("redis", reason="the redis client is not installed")

from warden.gateway.ratelimit_redis import RedisLimiter  # noqa: E402


def redis_limiter(url: str, clock: FakeClock | None, prefix: str) -> RedisLimiter:
    return RedisLimiter(redis.Redis.from_url(url), prefix=prefix, clock=clock)


@pytest.fixture
def prefix() -> str:
    return f"test:{uuid.uuid4().hex}:"


def test_same_decisions_as_in_process_across_clients(redis_url: str, prefix: str) -> None:
    """Two Redis clients taking turns agree exactly with one in-process limiter."""
    clock = FakeClock(20_000 * DAY_S - 30.0)  # the sequence crosses a UTC midnight
    reference = InProcessLimiter(clock=clock, wall_clock=clock)
    clients = [redis_limiter(redis_url, clock, prefix) for _ in range(2)]
    plans = {
        "a": RatePlan(rate=2.0, burst=5, daily_quota=40),
        "b": RatePlan(rate=0.5, burst=3),
        "c": RatePlan(rate=7.3, burst=16, daily_quota=25),
    }
    rng = random.Random(7)
    reasons: set[str | None] = set()
    for i in range(400):
        key = rng.choice(sorted(plans))
        cost = rng.choice([1, 1, 1, 2, 3, 5, 20])
        clock.advance(rng.choice([0.0, 0.01, 0.1, 0.37, 1.0, 2.5]))
        want = reference.check(key, plans[key], cost)
        got = clients[i % 2].check(key, plans[key], cost)
        assert got == want, (i, key, cost)
        reasons.add(got.reason)
    assert reasons == {None, "rate", "quota", "cost"}  # every branch was compared


def test_async_client_agrees(redis_url: str, prefix: str) -> None:
    clock = FakeClock()
    plan = RatePlan(rate=1.0, burst=2, daily_quota=10)

    async def run() -> list[Decision]:
        lim = RedisLimiter(aclient=redis.asyncio.Redis.from_url(redis_url), prefix=prefix,
                           clock=clock)  # fmt: skip
        out = []
        for _ in range(4):
            out.append(await lim.acheck("k", plan))
            clock.advance(0.4)
        await lim._aclient.aclose()  # type: ignore[union-attr]
        return out

    got = asyncio.run(run())
    clock2 = FakeClock()
    ref = InProcessLimiter(clock=clock2, wall_clock=clock2)
    want = []
    for _ in range(4):
        want.append(ref.check("k", plan))
        clock2.advance(0.4)
    assert got == want


def test_threads_on_separate_clients_never_over_admit(redis_url: str, prefix: str) -> None:
    plan = RatePlan(rate=1e-6, burst=50, daily_quota=1000)  # server clock; negligible refill
    counts: list[int] = []
    lock = threading.Lock()

    def hammer() -> None:
        lim = redis_limiter(redis_url, None, prefix)
        n = sum(lim.check("shared", plan).allowed for _ in range(25))
        with lock:
            counts.append(n)

    threads = [threading.Thread(target=hammer) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 50


def test_keys_expire_once_equivalent_to_fresh(redis_url: str, prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    lim = RedisLimiter(client, prefix=prefix)
    lim.check("no-quota", RatePlan(rate=1.0, burst=10))
    lim.check("quota", RatePlan(rate=1.0, burst=10, daily_quota=5))
    assert 1 <= client.ttl(prefix + "no-quota") <= 11
    assert 11 <= client.ttl(prefix + "quota") <= DAY_S + 1


def test_is_a_rate_limiter(redis_url: str) -> None:
    assert isinstance(RedisLimiter.from_url(redis_url), RateLimiter)


def test_unreachable_redis_fails_closed() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lim = RedisLimiter.from_url(f"redis://127.0.0.1:{port}/0", timeout_s=0.2)
    with pytest.raises(BackendUnavailable, match="rate-limit store is unavailable") as info:
        lim.check("k", RatePlan(1.0, 1))
    assert (info.value.status_code, info.value.headers) == (503, {"Retry-After": "1"})
    with pytest.raises(BackendUnavailable, match="refused"):
        asyncio.run(lim.acheck("k", RatePlan(1.0, 1)))


def test_misuse_is_refused() -> None:
    with pytest.raises(ConfigError, match="needs a Redis client"):
        RedisLimiter()
    with pytest.raises(ConfigError, match="not valid"):
        RedisLimiter.from_url("ftp://nowhere")
    lim = RedisLimiter(aclient=redis.asyncio.Redis())
    with pytest.raises(ConfigError, match="no sync client"):
        lim.check("k", RatePlan(1.0, 1))
