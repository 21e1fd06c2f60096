"""Shared rate limits across workers and hosts: the token bucket and daily quota in Redis.

One key per API key (``{prefix}{key_id}``, a hash of ``tokens``, ``ts``, ``day``, ``used``)
is read, updated and given an expiry by one Lua script, so a decision is one atomic round trip
however many gateways share the server. The script is :func:`warden.gateway.ratelimit.step`
line for line; floats travel as ``%.17g`` strings, so both backends give identical decisions on
the same sequence of calls. The clock is the Redis server's (``TIME``), so gateway hosts need no
clock agreement; tests inject one.

A key's hash expires once it would be indistinguishable from a fresh key: after the bucket has
refilled and, with a quota, after the UTC day ends.

**Fail closed**: when Redis cannot be reached or answers with an error, :meth:`check` raises
:class:`~warden.gateway.errors.BackendUnavailable` (the gateway answers 503 with
``Retry-After: 1``) and nothing is admitted. A 429 would wrongly tell the client its own limit is
spent; admitting would switch rate limiting off whenever Redis is down.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import redis
import redis.asyncio

from warden.errors import ConfigError
from warden.gateway.errors import BackendUnavailable
from warden.gateway.ratelimit import Decision, RatePlan, Refusal, _check_cost

__all__ = ["LUA_SCRIPT", "RedisLimiter"]

log = logging.getLogger(__name__)

LUA_SCRIPT = """
local key = KEYS[1]
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local quota = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local now = tonumber(ARGV[5])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local day = math.floor(now / 86400)
local s = redis.call('HMGET', key, 'tokens', 'ts', 'day', 'used')
local tokens = tonumber(s[1])
local ts = tonumber(s[2])
local used = 0
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
elseif tonumber(s[3]) == day then
  used = tonumber(s[4]) or 0
end
local elapsed = now - ts
if elapsed < 0 then elapsed = 0 end
tokens = math.min(burst, tokens + elapsed * rate)
local reason = ''
local retry = 0
if cost > burst or (quota >= 0 and cost > quota) then
  reason = 'cost'
  retry = -1
elseif quota >= 0 and used + cost > quota then
  reason = 'quota'
  retry = (day + 1) * 86400 - now
elseif tokens < cost then
  reason = 'rate'
  retry = (cost - tokens) / rate
else
  tokens = tokens - cost
  used = used + cost
end
redis.call('HSET', key, 'tokens', string.format('%.17g', tokens),
  'ts', string.format('%.17g', now), 'day', string.format('%d', day),
  'used', string.format('%d', used))
local ttl = math.ceil(burst / rate)
if quota >= 0 then
  local left = math.ceil((day + 1) * 86400 - now)
  if left > ttl then ttl = left end
end
redis.call('EXPIRE', key, string.format('%d', ttl + 1))
return {reason, string.format('%.17g', retry), string.format('%.17g', tokens),
  string.format('%d', used)}
"""
"""The decision script; KEYS[1] the key's hash; ARGV rate, burst, quota (-1: none), cost, now
(empty: server time)."""


class RedisLimiter:
    """A :class:`~warden.gateway.ratelimit.RateLimiter` whose state lives in Redis.

    Give a sync ``client`` for :meth:`check`, an async ``aclient`` for :meth:`acheck`, or both
    (:meth:`from_url` builds both; nothing connects until the first call). An async client is
    bound to the event loop that first uses it (one per gateway worker). ``clock`` (unix
    seconds) replaces the server's clock, for tests.
    """

    def __init__(
        self,
        client: redis.Redis | None = None,
        aclient: redis.asyncio.Redis | None = None,
        *,
        prefix: str = "warden:rl:",
        clock: Callable[[], float] | None = None,
    ) -> None:
        if client is None and aclient is None:
            raise ConfigError("RedisLimiter needs a Redis client, an async client, or both")
        self._client = client
        self._aclient = aclient
        self._prefix = prefix
        self._clock = clock
        self._script = None if client is None else client.register_script(LUA_SCRIPT)
        self._ascript = None if aclient is None else aclient.register_script(LUA_SCRIPT)

    @classmethod
    def from_url(
        cls, url: str, *, timeout_s: float = 0.5, prefix: str = "warden:rl:"
    ) -> RedisLimiter:
        """Sync and async clients for ``url`` (``redis://host:port/db``), with short timeouts
        so an unreachable server fails a request quickly instead of hanging it."""
        options: dict[str, Any] = {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s}
        try:
            client = redis.Redis.from_url(url, **options)
            aclient = redis.asyncio.Redis.from_url(url, **options)
        except ValueError as exc:
            raise ConfigError(
                f"Redis URL {url!r} is not valid ({exc}); expected redis://host:port/db"
            ) from exc
        return cls(client, aclient, prefix=prefix)

    def _args(self, key_id: str, plan: RatePlan, cost: int) -> tuple[list[str], list[str]]:
        _check_cost(cost)
        quota = -1 if plan.daily_quota is None else plan.daily_quota
        now = "" if self._clock is None else repr(float(self._clock()))
        args = [repr(plan.rate), str(plan.burst), str(quota), str(cost), now]
        return [self._prefix + key_id], args

    def check(self, key_id: str, plan: RatePlan, cost: int = 1) -> Decision:
        """Admit or refuse ``cost`` units for ``key_id``; raise ``BackendUnavailable`` when
        Redis cannot answer."""
        if self._script is None:
            raise ConfigError("this RedisLimiter has no sync client; use acheck() or pass client=")
        keys, args = self._args(key_id, plan, cost)
        try:
            reply = self._script(keys=keys, args=args)
        except (redis.RedisError, OSError) as exc:
            raise _unavailable(exc) from exc
        return _decision(reply, plan)

    async def acheck(self, key_id: str, plan: RatePlan, cost: int = 1) -> Decision:
        """:meth:`check` over the async client."""
        if self._ascript is None:
            raise ConfigError("this RedisLimiter has no async client; use check() or pass aclient=")
        keys, args = self._args(key_id, plan, cost)
        try:
            reply = await self._ascript(keys=keys, args=args)
        except (redis.RedisError, OSError) as exc:
            raise _unavailable(exc) from exc
        return _decision(reply, plan)


def _unavailable(exc: BaseException) -> BackendUnavailable:
    log.warning("rate-limit store unavailable, refusing the request: %s", exc)
    return BackendUnavailable(
        "the rate-limit store is unavailable; the request was refused, retry shortly",
        headers={"Retry-After": "1"},
    )


_REASONS: dict[str, Refusal] = {"rate": "rate", "quota": "quota", "cost": "cost"}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _decision(reply: Any, plan: RatePlan) -> Decision:
    reason_s, retry_s, tokens_s, used_s = (_text(v) for v in reply)
    reason = _REASONS.get(reason_s)
    retry = float(retry_s)
    tokens = float(tokens_s)
    quota_left = None if plan.daily_quota is None else plan.daily_quota - int(used_s)
    remaining = math.floor(tokens)
    if quota_left is not None:
        remaining = min(remaining, quota_left)
    return Decision(
        reason is None, None if reason == "cost" else retry, remaining, quota_left, reason
    )
