"""schemathesis against the service's own OpenAPI schema: every operation, generated inputs, no 5xx and no
response that breaks the schema."""
import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from service.api.app import create_app
from service.api.jobs import jobs_of
from service.api.state import runtime_for
from service.settings import Settings

from .conftest import copy_index, make_classifier

# The two POST operations take generated bodies (the GETs and the reload have no input to vary):
# 2 × 300 ≥ 500 generated cases.
EXAMPLES_PER_OPERATION = 300
DERANDOMIZE = os.environ.get("SCHEMATHESIS_RANDOM") != "1"  # set it to explore beyond the fixed seed
# Answers a schema-valid request may get: success, or a body over the byte limit (413, not expressible in
# JSON Schema); the reload route also its documented 401 (no or a wrong token) and 409 (the index on disk
# refused). No API key is set here, so nothing else may answer 401.
ACCEPTED = {200, 413}
# /feedback: a stored correction is a 201; its genres must be labels of the serving index (data, not schema:
# 422 otherwise), and a generated id is seldom one stored (404)
# /feedback: 409 for a title of several films; /approve: 404 for no such correction, 409 for a revoked one;
# /feedback/reject: 422 for a body naming neither a client nor an age (both fields are optional in the schema)
# /jobs: 202 for a file taken, 422 for a name without a known extension or a file that cannot be read, 429 once
# MOVIEGENRE_MAX_JOBS are kept; a generated job id is none kept (404)
ACCEPTED_BY_PATH = {"/admin/reload": ACCEPTED | {401, 409}, "/feedback": ACCEPTED | {201, 409, 422},
                    "/feedback/{correction_id}": ACCEPTED | {404},
                    "/feedback/{correction_id}/approve": ACCEPTED | {404, 409},
                    "/feedback/reject": ACCEPTED | {422}, "/jobs": ACCEPTED | {202, 422, 429},
                    "/jobs/{job_id}": ACCEPTED | {404}, "/jobs/{job_id}/output": ACCEPTED | {404},
                    "/jobs/{job_id}/rejected": ACCEPTED | {404}}
EDITOR = {"X-API-Key": "ed1tor"}  # every call presents the editor token: /feedback is exercised, not just refused

# The schema is read at import; the runtime it serves is put in place by the fixture below.
app = create_app(Settings(llm_backend="none", admin_token="adm1n", feedback_token="ed1tor"))
# A body over the byte limit is refused with 413 before it is parsed, whatever it holds.
config = schemathesis.config.SchemathesisConfig.from_dict({"checks": {"negative_data_rejection": {
    "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]}}})
schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)


@pytest.fixture(scope="module", autouse=True)
def served_runtime(small_index_dir, tmp_path_factory):
    """A copy of the small index: the corrections generated here stay here."""
    index_dir = copy_index(small_index_dir, tmp_path_factory.mktemp("schema") / "index")
    app.state.runtime = runtime_for(make_classifier(index_dir, feedback_token="ed1tor"))
    app.state.jobs = jobs_of(app.state.settings.replace(jobs_dir=index_dir / "jobs"))  # the uploads too


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _check(case) -> None:
    # schemathesis 4.32 generates NUL characters for array items although the item pattern excludes them;
    # such requests are rightly refused (422), so its positive-data check is replaced by the one below.
    response = case.call_and_validate(headers=EDITOR, excluded_checks=[positive_data_acceptance])
    if case.meta.generation.mode.is_positive and not _has_nul(case.body):
        accepted = ACCEPTED_BY_PATH.get(case.path, ACCEPTED)
        assert response.status_code in accepted, f"schema-valid request refused: {response.text[:300]}"


@schema.exclude(path_regex="^/feedback").parametrize()
@settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, derandomize=DERANDOMIZE, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_no_server_error_and_every_response_matches_the_schema(case):
    _check(case)


# each correction stored is embedded by both models: fewer examples keep the suite short
@schema.include(path_regex="^/feedback").parametrize()
@settings(max_examples=60, deadline=None, derandomize=DERANDOMIZE, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_feedback_answers_no_server_error_and_matches_the_schema(case):
    _check(case)
