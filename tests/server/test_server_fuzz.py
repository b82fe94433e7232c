"""Schema fuzzing of the OpenAPI document (schemathesis strategies driven by hypothesis):
no generated request may produce a 5xx, and every error is in OpenAI's format."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis import GenerationMode

from embedhub.server.app import create_app
from tests.live_server import live_server


def test_no_server_errors_on_generated_requests(settings, tiny_encoder):
    app = create_app(
        settings.model_copy(update={"max_items_per_request": 16}), encoders={"tiny": tiny_encoder}
    )
    checked: list[str] = []
    calls: list[int] = []
    with live_server(app, "/ready") as url:
        schema = schemathesis.openapi.from_url(url + "/openapi.json")
        for result in schema.get_all_operations():
            operation = result.ok()
            checked.append(f"{operation.method.upper()} {operation.path}")

            strategies = [operation.as_strategy(generation_mode=mode) for mode in GenerationMode]

            @given(case=strategies[0] | strategies[1])
            @hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
            def check(case):
                response = case.call(base_url=url, timeout=60)
                calls.append(response.status_code)
                assert response.status_code < 500, (case.method, case.path, case.body, response.text[:300])
                if response.status_code >= 400 and case.path != "/ready":
                    error = response.json()["error"]
                    assert error["message"] and error["type"]

            check()
    assert "POST /v1/embeddings" in checked and "POST /tokenize" in checked
    assert len(calls) >= 5 * len(checked), "hypothesis generated too few requests to count as a fuzz run"
    assert {200, 422} <= set(calls)
