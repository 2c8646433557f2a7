"""Property-based check of the whole OpenAPI surface: for every operation in `/openapi.json`,
Schemathesis generates valid and invalid requests (sent with an operator key), and no
response may be a 5xx.

Operations are driven one by one through `APIOperation.as_strategy` rather than
`schemathesis.pytest.from_fixture`, whose lazy loader does not run under pytest 9, so that
the app can still come from the `db` fixture (SQLite and PostgreSQL)."""

from __future__ import annotations

import schemathesis
from api_seed import Keys, auth
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 10}


def test_no_operation_answers_with_a_server_error(app: FastAPI, keys: Keys) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = auth(keys.operator)
    failures: list[str] = []
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results) > 20, "the OpenAPI document has invalid operations"
    for operation in operations:
        for mode, examples in EXAMPLES.items():

            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def no_server_error(case: schemathesis.Case) -> None:
                case.call_and_validate(headers=headers, checks=[not_a_server_error])

            try:
                no_server_error()
            except Unsatisfiable:
                if mode is not GenerationMode.NEGATIVE:  # nothing to make invalid: no input at all
                    raise
            except Exception as exc:  # collect every operation's failure, then report them all
                failures.append(f"{operation.label} [{mode.value}]: {exc}")
    assert not failures, "\n\n".join(failures)
