"""``HttpModel``: a classifier behind an HTTP(S) JSON endpoint, with a query budget.

Each chunk of at most ``batch_size`` rows is sent as ``POST url`` with the JSON body
``{input_key: rows}`` and must be answered ``2xx`` with ``{output_key: [[score, ...], ...]}``,
one row of ``n_classes`` finite numbers per input row.

Query accounting: ``queries_used`` counts *input rows* the server has answered with a 2xx
status (even if the body then proves unreadable: the server did see them). Attempts that fail
(connection errors, timeouts, 429/5xx) are not counted, and a retried chunk counts once. With
``max_queries`` set, a call that would take ``queries_used`` past the budget raises
:class:`~warden.errors.QueryBudgetExceeded` before anything is sent.

Transient failures (connection errors, timeouts, 429 and 5xx) are retried up to ``retries``
times, waiting ``backoff * 2**attempt`` seconds, or the server's ``Retry-After`` (in seconds,
at most ``max_retry_after``) on 429/503. Any other non-2xx status fails at once with
:class:`~warden.errors.ModelQueryError`. Redirects are not followed.

Not thread-safe: use one ``HttpModel`` per thread.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from warden.errors import ModelError, ModelQueryError, QueryBudgetExceeded
from warden.models.base import AdapterBase, Bounds, check_batch
from warden.models.callable import check_scores, resolve_bounds

if TYPE_CHECKING:
    import httpx

__all__ = ["HttpModel"]

logger = logging.getLogger(__name__)

_SNIPPET = 200


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _SNIPPET else flat[:_SNIPPET] + "…"


def _retry_after(response: httpx.Response, cap: float) -> float | None:
    """The ``Retry-After`` header in seconds (capped at ``cap``), or ``None`` if absent/odd."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, cap)


class HttpModel(AdapterBase):
    """A remote classifier queried over HTTP(S) with JSON; counts and limits queries.

    ``bounds=None`` means unknown and is taken as ``[0, 1]`` per feature. ``transport`` lets a
    test or caller supply an ``httpx`` transport; ``sleep`` is the function used to wait
    between retries. ``trust_env`` is passed to ``httpx.Client`` (proxy variables, .netrc).
    """

    def __init__(
        self,
        url: str,
        *,
        input_shape: Sequence[int],
        n_classes: int,
        bounds: Bounds | None = None,
        max_queries: int | None = None,
        batch_size: int = 64,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.2,
        max_retry_after: float = 30.0,
        headers: Mapping[str, str] | None = None,
        input_key: str = "inputs",
        output_key: str = "outputs",
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        trust_env: bool = True,
    ) -> None:
        import httpx

        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise ModelError(f"invalid model URL {url!r}: {exc}") from exc
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ModelError(f"model URL must be http:// or https:// with a host, got {url!r}")
        if n_classes < 2:
            raise ModelError(f"n_classes must be at least 2, got {n_classes}")
        if max_queries is not None and max_queries < 0:
            raise ModelError(f"max_queries must be 0 or more, got {max_queries}")
        if batch_size < 1 or retries < 0 or backoff < 0 or timeout <= 0 or max_retry_after < 0:
            raise ModelError(
                "invalid HttpModel settings: need batch_size >= 1, retries >= 0, backoff >= 0, "
                f"timeout > 0, max_retry_after >= 0; got batch_size={batch_size}, "
                f"retries={retries}, backoff={backoff}, timeout={timeout}, "
                f"max_retry_after={max_retry_after}"
            )
        self.url = url
        self._input_shape = tuple(int(s) for s in input_shape)
        self._n_classes = int(n_classes)
        self._bounds = resolve_bounds(bounds, self._input_shape, "HttpModel")
        self.max_queries = max_queries
        self.batch_size = int(batch_size)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.max_retry_after = float(max_retry_after)
        self.input_key = input_key
        self.output_key = output_key
        self._sleep = sleep
        self._used = 0
        self._client = httpx.Client(
            timeout=timeout,
            headers=dict(headers or {}),
            transport=transport,
            follow_redirects=False,
            trust_env=trust_env,
        )

    @property
    def queries_used(self) -> int:
        """Input rows the server has answered (2xx) since creation or :meth:`reset_queries`."""
        return self._used

    @property
    def remaining(self) -> int | None:
        """Rows left in the budget, or ``None`` when there is no budget."""
        if self.max_queries is None:
            return None
        return max(self.max_queries - self._used, 0)

    def reset_queries(self) -> None:
        """Start counting from zero again (the budget applies afresh)."""
        self._used = 0

    def __call__(self, x: NDArray[Any]) -> NDArray[np.float32]:
        arr = check_batch(x, self._input_shape)
        n = len(arr)
        if self.max_queries is not None and self._used + n > self.max_queries:
            raise QueryBudgetExceeded(
                f"query budget spent: {self._used} of {self.max_queries} rows used, this call "
                f"needs {n} more; nothing was sent (reset_queries() or raise max_queries)"
            )
        if n == 0:
            return np.zeros((0, self._n_classes), np.float32)
        outs = [self._query(arr[i : i + self.batch_size]) for i in range(0, n, self.batch_size)]
        return np.concatenate(outs)

    def _query(self, rows: NDArray[np.float32]) -> NDArray[np.float32]:
        import httpx

        payload = {self.input_key: rows.tolist()}
        for attempt in range(self.retries + 1):
            delay = self.backoff * 2**attempt
            try:
                response = self._client.post(self.url, json=payload)
            except httpx.TransportError as exc:
                reason = f"{type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if 200 <= status < 300:
                    self._used += len(rows)
                    return self._parse(response, len(rows))
                if status != 429 and status < 500:
                    raise ModelQueryError(
                        f"{self.url} answered HTTP {status}: {_snippet(response.text)!r}"
                    )
                reason = f"HTTP {status}"
                hinted = _retry_after(response, self.max_retry_after)
                if hinted is not None:
                    delay = hinted
            if attempt == self.retries:
                raise ModelQueryError(
                    f"{self.url}: gave up after {self.retries + 1} attempts; last: {reason}"
                )
            logger.info("%s: %s; retry %d in %.2fs", self.url, reason, attempt + 1, delay)
            self._sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _parse(self, response: httpx.Response, n_rows: int) -> NDArray[np.float32]:
        try:
            body = response.json()
        except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
            raise ModelQueryError(
                f"{self.url} answered with a body that is not JSON ({exc}): "
                f"{_snippet(response.text)!r}"
            ) from exc
        if not isinstance(body, dict) or self.output_key not in body:
            raise ModelQueryError(
                f"{self.url} answered JSON without the key {self.output_key!r}: "
                f"{_snippet(response.text)!r}"
            )
        try:
            return check_scores(body[self.output_key], n_rows, self._n_classes, self.url)
        except ModelError as exc:
            raise ModelQueryError(str(exc)) from exc

    def close(self) -> None:
        """Close the underlying HTTP client and its connections."""
        self._client.close()

    def __enter__(self) -> HttpModel:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        budget = "" if self.max_queries is None else f", max_queries={self.max_queries}"
        return (
            f"HttpModel({self.url!r}, input_shape={self._input_shape}, "
            f"n_classes={self._n_classes}{budget})"
        )
