"""A bounded schemathesis run against the app's own OpenAPI: no input yields a 5xx."""

from __future__ import annotations

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings

from .conftest import LiveServer
from .test_tote_api import RACE

EXAMPLES_PER_OPERATION = 12


def test_no_input_makes_a_server_error(server: LiveServer) -> None:
    # a race to hit, so that commands get past "race not found" now and then
    httpx.post(f"{server.url}/races", json=RACE, headers=server.admin).raise_for_status()
    httpx.post(f"{server.url}/races/r1/open", headers=server.admin).raise_for_status()
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    failures: list[str] = []
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.endswith("/odds/stream"):
            continue  # never ends by design; it has its own tests
        checked += 1

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,  # the same cases every run: CI must not be a lottery
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case) -> None:
            # with the admin key, so admin routes get past 401 (tested on their own)
            for headers in (server.admin,):
                response = case.call(headers=headers, timeout=10)
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.formatted_path} -> {response.status_code}: "
                        f"{response.text[:200]}"
                    )

        run()
    assert checked >= 12, f"only {checked} operations were exercised"
    assert not failures, "\n".join(failures[:10])
