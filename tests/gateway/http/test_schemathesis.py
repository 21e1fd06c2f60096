"""schemathesis over the OpenAPI documents of both listeners: generated requests (valid and
invalid bodies, parameters and headers) for every operation, with live credentials — an admin
session with MFA done on the admin listener, a client API key on the inference listener — must
never get a 5xx.

The gateway is a world of its own (not the session's ``world``): admin calls with generated
arguments change users, keys and models, and other tests must not see that.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.gateway.http.conftest import World, running_world

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.generation import GenerationMode  # noqa: E402

MAX_EXAMPLES = 25
"""Generated cases per operation (valid and invalid ones mixed)."""


@pytest.fixture(scope="module")
def fuzz_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with running_world(tmp_path_factory.mktemp("gateway-fuzz")) as w:
        yield w


def _fuzz(world: World, url: str, token: str, subtests: pytest.Subtests) -> Counter[int]:
    """Run every operation of the OpenAPI document at ``url`` with ``token``, each as a
    subtest that fails on a 5xx; the statuses seen."""
    schema = schemathesis.openapi.from_url(url)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 3, [op.label for op in operations]
    statuses: Counter[int] = Counter()
    for operation in operations:
        with subtests.test(msg=operation.label):
            if operation.path == "/v1/logout":  # it ends its session: a throwaway one each
                _run(operation, lambda: world.login("eng"), statuses)
            else:
                _run(operation, lambda: token, statuses)
    return statuses


def _run(operation: Any, bearer: Callable[[], str], statuses: Counter[int]) -> None:
    """Valid and invalid generated cases of one operation; a 5xx fails (minimal example)."""
    strategy = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        response = case.call_and_validate(
            headers={"Authorization": f"Bearer {bearer()}"}, checks=[not_a_server_error]
        )
        statuses[response.status_code] += 1

    run()


def test_inference_listener_never_answers_5xx(fuzz_world: World, subtests: pytest.Subtests) -> None:
    statuses = _fuzz(
        fuzz_world, f"{fuzz_world.base}/openapi.json", fuzz_world.tokens["key"], subtests
    )
    assert sum(n for s, n in statuses.items() if s < 300) > 0, statuses  # the key worked


def test_admin_listener_never_answers_5xx(fuzz_world: World, subtests: pytest.Subtests) -> None:
    statuses = _fuzz(
        fuzz_world, f"{fuzz_world.admin_base}/openapi.json", fuzz_world.tokens["admin"], subtests
    )
    assert sum(n for s, n in statuses.items() if s < 300) > 0, statuses  # the session worked


def test_the_credentials_stayed_valid(fuzz_world: World) -> None:
    """The cases above ran authenticated (a dead token would only have tested the 401 path)."""
    with fuzz_world.client(fuzz_world.tokens["admin"], admin=True) as c:
        assert c.get("/v1/me").status_code == 200
    with fuzz_world.client(fuzz_world.tokens["key"]) as c:
        assert c.get("/v1/models").status_code == 200
