"""Property-based fuzzing of the whole API from its OpenAPI document (schemathesis)
against a real server: no 5xx, every answer matches the documented schema.

Bounded so the suite stays fast: a few examples per operation, no shrinking."""
from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from api_stack import LiveServer, make_stack  # the api tests' stack

EXAMPLES = int(os.environ.get("CITYSOC_FUZZ_EXAMPLES", "6"))  # 40 ran clean too; raise to dig deeper
# Mounted but without their services in this stack (they answer 503 after the access
# checks, which test_api_auth walks); their own tests fuzz them with the parts wired
# (playbooks: real actions).
NOT_WIRED_HERE = ("/api/v1/playbooks", "/api/v1/playbook-runs", "/api/v1/assets", "/api/v1/reports",
                  "/api/v1/scheduled-rules")
SKIP = {
    ("GET", "/api/v1/alerts/stream"),  # endless by design; covered by test_alerts_e2e
}


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory):
    from core.protocols import Detection

    s = make_stack(tmp_path_factory.mktemp("fuzz"))
    s.state.services.alert_recorder.emit(
        [Detection("r1", "t", "high", [{"host": {"name": f"cam-{i}"}}]) for i in range(3)])
    s.soc.cases.create_case("seed", "", "low", "test", [1])
    srv = LiveServer(s).start()
    yield s, srv
    srv.stop()
    s.soc.close()


def test_api_conforms_to_its_schema(fuzz_stack):
    s, srv = fuzz_stack
    schema = schemathesis.openapi.from_dict(s.app.openapi())
    schema.config.update(base_url=srv.url)
    # Schema-valid yet unusable input (a time bound like "C", a Lucene query that does not
    # parse) gets a documented 400 with the reason: JSON Schema cannot express those rules.
    schema.config.checks.positive_data_acceptance.expected_statuses = [
        *schema.config.checks.positive_data_acceptance.expected_statuses, "400"]
    headers = {"Authorization": f"ApiKey {s.keys['admin']}"}
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        op = result.ok()
        if (op.method.upper(), op.path) in SKIP or op.path.startswith(NOT_WIRED_HERE):
            continue
        operations += 1

        @given(case=op.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck), derandomize=True, database=None)
        def run(case):
            case.call_and_validate(headers=headers)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # collect every operation's failure, not just the first
            failures.append(f"{op.method.upper()} {op.path}: {exc}"[:3000])
    assert operations > 40
    assert not failures, "\n\n".join(failures)
