"""Errors: problem+json and foreign answers become one line with code and request id, and
each error class has its exit code (usage 2, auth 3, not found 4, conflict/cap 5, server 6)."""
from __future__ import annotations

import httpx
import pytest
from cli_fakes import BASE, FakeApi, envelope, problem, session
from medforge_cli import errors
from medforge_cli.client import Api, error_from_response


@pytest.mark.parametrize("status, code", [
    (400, 2), (413, 2), (422, 2), (401, 3), (403, 3), (404, 4), (409, 5), (429, 5),
    (500, 6), (502, 6), (503, 6), (302, 6),
])
def test_exit_code_per_status(status, code):
    assert errors.exit_code_for_status(status) == code


def test_a_problem_document_is_one_line_with_code_status_and_request_id():
    request = httpx.Request("POST", f"{BASE}/api/v2/external/sessions")
    response = problem(409, "no_gpus_available", "Every GPU is in use or disabled; try again later.",
                       request_id="4d2c0f1e-aaaa")
    response.request = request
    exc = error_from_response(response)
    assert exc.exit_code == errors.CONFLICT
    assert exc.one_line() == ("no_gpus_available: Every GPU is in use or disabled; try again later. "
                              "(HTTP 409, request 4d2c0f1e-aaaa)")
    assert "\n" not in exc.one_line()


def test_field_problems_follow_with_line_numbers():
    rows = [{"line": 3, "field": "Survived", "message": "not 0 or 1", "code": "invalid"},
            {"line": 7, "field": None, "message": "duplicate id 4", "code": "duplicate"}]
    response = problem(422, "submission_invalid", "2 problems in the file.", errors=rows,
                       total_problems=14)
    response.request = httpx.Request("POST", f"{BASE}/x")
    exc = error_from_response(response)
    assert exc.exit_code == errors.USAGE
    assert exc.details() == ["line 3, Survived: not 0 or 1", "line 7: duplicate id 4", "… and 12 more"]


def test_retry_after_is_shown():
    response = problem(429, "submission_cap_reached", "Daily cap of 3 reached.",
                       headers={"Retry-After": "3600"})
    response.request = httpx.Request("POST", f"{BASE}/x")
    exc = error_from_response(response)
    assert exc.exit_code == errors.CONFLICT and "retry after 3600s" in exc.one_line()


def test_an_answer_that_is_not_the_apis_still_makes_one_line():
    response = httpx.Response(502, text="Bad gateway: no upstream for this session\nmore",
                              headers={"Content-Type": "text/plain"})
    response.request = httpx.Request("GET", f"{BASE}/api/v2/me")
    exc = error_from_response(response)
    assert exc.exit_code == errors.SERVER
    assert exc.one_line() == (f"GET {BASE}/api/v2/me: Bad gateway: no upstream for this session (HTTP 502)")
    html = httpx.Response(404, text="<html>nope</html>", headers={"Content-Type": "text/html"})
    html.request = httpx.Request("GET", f"{BASE}/api/v2/me")
    assert "HTML page" in error_from_response(html).one_line()


def test_a_2xx_without_the_envelope_is_a_server_error():
    api = Api(BASE, "t", transport=httpx.MockTransport(lambda r: httpx.Response(200, json=[1, 2])))
    with pytest.raises(errors.ServerError, match="envelope"):
        api.data("GET", "/me")
    api = Api(BASE, "t", transport=httpx.MockTransport(lambda r: httpx.Response(200, text="<html>")))
    with pytest.raises(errors.ServerError, match="not JSON"):
        api.data("GET", "/me")


# --- through the entry point: one line on stderr, the class's exit code -----------------------


@pytest.mark.parametrize("response, code, text", [
    (problem(401, "invalid_token", "Invalid or expired token.", request_id="r-401"), 3,
     "medforge: error: invalid_token: Invalid or expired token. (HTTP 401, request r-401)"),
    (problem(403, "internal_access_required", "The internal surface needs the internal entitlement."), 3,
     "internal_access_required"),
    (problem(404, "session_not_found", "No such session on this surface."), 4, "session_not_found"),
    (problem(409, "concurrent_session_limit", "You already have 1 active session."), 5,
     "concurrent_session_limit"),
    (problem(422, "validation_error", "pack_id: too long"), 2, "validation_error"),
    (problem(503, "maintenance", "New sessions are paused."), 6, "maintenance"),
    (httpx.Response(500, text="boom"), 6, "(HTTP 500)"),
])
def test_each_error_class_exits_with_its_code(cli, logged_in, response, code, text):
    api = FakeApi().add("GET", "/external/sessions/current", response)
    result = cli("sessions", "status", transport=api.transport)
    assert result.exit_code == code, result
    assert text in result.stderr
    assert result.stdout == ""
    assert len([line for line in result.stderr.splitlines() if line.startswith("medforge: error:")]) == 1


def test_unreachable_is_a_server_class_error(cli, logged_in):
    def refuse(request):
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    result = cli("whoami", transport=httpx.MockTransport(refuse))
    assert result.exit_code == errors.SERVER
    assert "Cannot reach https://medforge.test: [Errno 111] Connection refused" in result.stderr


def test_usage_errors_exit_2(cli, logged_in):
    assert cli("sessions", "start", "--no-such-option").exit_code == 2
    assert cli("competitions", "submit", "titanic", "/no/such/file.csv").exit_code == 2
    assert cli("sessions", "port-forward", "current", "x:y").exit_code == 2
    assert cli("tokens", "create", "ci", "--expires", "yesterday").exit_code == 2
    assert cli("sessions", "start", "--pack", "p", "--restore", "s").exit_code == 2


def test_not_logged_in_is_an_auth_error(cli, cli_env, monkeypatch):
    monkeypatch.setenv("MEDFORGE_URL", "https://medforge.test")
    result = cli("sessions", "list")
    assert result.exit_code == errors.AUTH and "Not logged in" in result.stderr


def test_a_session_that_does_not_run_cannot_be_opened(cli, logged_in):
    api = FakeApi().add("GET", "/external/sessions/current",
                        envelope({"session": session("starting")}))
    result = cli("sessions", "open", "--print", transport=api.transport)
    assert result.exit_code == errors.CONFLICT and "opens once it runs" in result.stderr


def test_help_exits_0_and_shows_examples(cli):
    result = cli("--help")
    assert result.exit_code == 0 and "Examples:" in result.stdout and "Exit codes" in result.stdout
    for group in ("sessions", "competitions", "tokens", "snapshots", "packs"):
        assert cli(group, "--help").exit_code == 0
    assert "port-forward current 6006:6006" in cli("sessions", "port-forward", "--help").stdout
    assert cli("--version").stdout.startswith("medforge-cli ")
