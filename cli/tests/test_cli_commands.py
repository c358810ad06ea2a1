"""Commands against the fake API: sessions (both action shapes, --wait over SSE, queued),
tokens, snapshots and competitions (submit --wait, submissions, download, leaderboard)."""
from __future__ import annotations

import json
import tomllib

import pytest
from cli_fakes import FakeApi, envelope, event, page, problem, session, sse
from medforge_cli import errors

SID = "5b0f6d3e-1c1a-4a53-9a55-0d7c5e1f2a01"
S = f"/external/sessions/{SID}"


def lifecycle(api: FakeApi, *, final: str = "running", error: str = "") -> FakeApi:
    api.add("GET", S + "/events/stream", sse(
        ("session_event", "1", event(1, "created", "Session created")),
        ("session_event", "2", event(2, "container_started", "Container started")),
        ("session_event", "3", event(3, final, error or "IDE answers"))))
    api.add("GET", S, [envelope(session("starting")), envelope(session("starting")),
                       envelope(session(final, error=error))])
    return api


@pytest.mark.parametrize("shape", ["flat", "action"])
def test_start_wait_follows_the_stream_in_either_answer_shape(cli, logged_in, shape):
    created = session("starting")
    body = created if shape == "flat" else {"session": created, "message": "Starting on GPU 0."}
    api = lifecycle(FakeApi().add("POST", "/external/sessions", envelope(body, 201)))
    result = cli("sessions", "start", "--pack", "default", "--wait", transport=api.transport)
    assert result.exit_code == 0, result
    assert result.json()["status"] == "running"
    assert "container_started" in result.stderr and "Container started" in result.stderr
    assert json.loads(api.calls("POST", "/external/sessions")[0].content) == {"pack_id": "default"}
    if shape == "action":
        assert "Starting on GPU 0." in result.stderr


def test_start_wait_exits_1_when_the_session_errors(cli, logged_in):
    api = lifecycle(FakeApi().add("POST", "/external/sessions", envelope(session("starting"), 201)),
                    final="error", error="image pull failed")
    result = cli("sessions", "start", "--wait", transport=api.transport)
    assert result.exit_code == errors.FAILED
    assert "ended error: image pull failed" in result.stderr


def test_a_queued_start_is_shown(cli, logged_in):
    api = FakeApi().add("POST", "/external/sessions",
                        envelope({"session": session("queued"), "message": "Queued."}, 202))
    result = cli("sessions", "start", "--queue", transport=api.transport)
    assert result.exit_code == 0, result
    assert result.json()["status"] == "queued" and "Queued: no GPU is free" in result.stderr
    assert json.loads(api.requests[0].content) == {"wait": True}


def test_start_conflicts_exit_5(cli, logged_in):
    api = FakeApi().add("POST", "/external/sessions",
                        problem(409, "no_gpus_available", "Every GPU is in use or disabled; try again later."))
    result = cli("sessions", "start", transport=api.transport)
    assert result.exit_code == errors.CONFLICT and "no_gpus_available" in result.stderr


def test_internal_sessions_use_the_internal_surface(cli, logged_in):
    api = FakeApi().add("GET", "/internal/sessions", page([session()]))
    assert cli("sessions", "list", "--internal", transport=api.transport).exit_code == 0
    assert api.requests[0].url.path == "/api/v2/internal/sessions"


def test_list_as_csv_and_status_by_slug(cli, logged_in):
    rows = [session("running"), session("stopped", sid="00000000-0000-4000-8000-00000000beef", slug="zzzz2345")]
    api = FakeApi().add("GET", "/external/sessions", page(rows))
    result = cli("sessions", "list", "-o", "csv", transport=api.transport)
    assert result.stdout.splitlines() == [
        "slug,status,pack.slug,gpu.index,created_at,stopped_at,id",
        f"abcd2345,running,default,0,2026-01-02T10:00:00Z,,{SID}",
        "zzzz2345,stopped,default,0,2026-01-02T10:00:00Z,,00000000-0000-4000-8000-00000000beef"]
    result = cli("sessions", "status", "zzzz2345", transport=api.transport)
    assert result.json()["slug"] == "zzzz2345"
    assert cli("sessions", "status", "nope2345", transport=api.transport).exit_code == errors.NOT_FOUND


def test_status_without_an_active_session_is_not_found(cli, logged_in):
    api = FakeApi().add("GET", "/external/sessions/current", envelope({"session": None}))
    result = cli("sessions", "status", transport=api.transport)
    assert result.exit_code == errors.NOT_FOUND and "No active session" in result.stderr


def test_stop_wait_names_the_snapshot(cli, logged_in):
    snap = {"id": "s1", "name": "ws-1@stop-1767225600000", "kind": "stop",
            "created_at": "2026-01-02T10:05:00Z", "size_bytes": 1024, "session_id": SID}
    api = FakeApi()
    api.add("GET", "/external/sessions/current", envelope({"session": session("running")}))
    api.add("POST", S + "/stop", envelope({"session": session("stopping"), "message": "Stopping."}, 202))
    api.add("GET", S + "/events/stream", sse(("session_event", "9", event(9, "stopped")),
                                             ("end", None, {"status": "stopped"})))
    api.add("GET", S, envelope(session("stopped", snapshots=[snap])))
    result = cli("sessions", "stop", "--wait", transport=api.transport)
    assert result.exit_code == 0, result
    assert result.json()["status"] == "stopped"
    assert "Workspace snapshot: ws-1@stop-1767225600000" in result.stderr


def test_status_watch_follows_until_terminal(cli, logged_in):
    api = FakeApi()
    api.add("GET", S, [envelope(session("running")), envelope(session("stopping")),
                       envelope(session("stopped"))])
    api.add("GET", S + "/events/stream", sse(("session_event", "5", event(5, "stop_requested")),
                                             ("session_event", "6", event(6, "stopped"))))
    result = cli("sessions", "status", SID, "--watch", transport=api.transport)
    assert result.exit_code == 0, result
    assert result.json()["status"] == "stopped" and "stop_requested" in result.stderr


def test_snapshot_restore_by_name(cli, logged_in):
    snap = {"id": "9d7e2f10-0000-4000-8000-000000000001", "name": "ws-1@stop-1", "kind": "stop",
            "created_at": "2026-01-02T10:05:00Z", "size_bytes": 10, "session_id": SID}
    api = FakeApi().add("GET", "/external/snapshots", page([snap]))
    api.add("POST", f"/external/snapshots/{snap['id']}/restore", envelope(session("starting"), 201))
    result = cli("snapshots", "restore", "ws-1@stop-1", transport=api.transport)
    assert result.exit_code == 0, result
    assert result.json()["status"] == "starting"
    listed = cli("snapshots", "list", "-o", "csv", transport=api.transport).stdout.splitlines()
    assert listed[1].startswith("ws-1@stop-1,stop,")


# --- tokens -----------------------------------------------------------------------------------


def token(tid: str, name: str, prefix: str, **extra) -> dict:
    return {"id": tid, "name": name, "prefix": prefix, "created_at": "2026-01-01T00:00:00Z",
            "expires_at": None, "last_used_at": None, "revoked_at": None, "active": True, **extra}


def test_tokens_create_with_expiry_and_list(cli, logged_in):
    api = FakeApi()
    api.add("POST", "/me/tokens", envelope({**token("t2", "ci", "mf_newnewn"), "secret": "mf_newnewnew"}, 201))
    api.add("GET", "/me/tokens", page([token("t1", "laptop", logged_in[:10]), token("t2", "ci", "mf_newnewn")]))
    result = cli("tokens", "create", "ci", "--expires", "30d", transport=api.transport)
    assert result.exit_code == 0 and result.json()["secret"] == "mf_newnewnew"
    body = json.loads(api.calls("POST", "/me/tokens")[0].content)
    assert body["name"] == "ci" and body["expires_at"].endswith("Z")
    table = cli("tokens", "list", "-o", "table", transport=api.transport).stdout
    line = next(line for line in table.splitlines() if "laptop" in line)
    assert line.lstrip().startswith("*")


def test_rotating_the_clis_own_token_updates_the_profile(cli, cli_env, logged_in):
    api = FakeApi()
    api.add("GET", "/me/tokens", page([token("t1", "laptop", logged_in[:10])]))
    rotated = {**token("t3", "laptop", "mf_rotated"), "secret": "mf_rotated_secret"}
    api.add("POST", "/me/tokens/t1/rotate", envelope(rotated, 201))
    result = cli("tokens", "rotate", "laptop", transport=api.transport)
    assert result.exit_code == 0, result
    assert "now holds the new one" in result.stderr
    assert tomllib.loads((cli_env / "config.toml").read_text())["profiles"]["default"]["token"] == "mf_rotated_secret"
    assert cli("tokens", "revoke", "missing", transport=api.transport).exit_code == errors.NOT_FOUND


# --- competitions -------------------------------------------------------------------------------

DETAIL = {"slug": "titanic-survival", "title": "Titanic", "exposure": "external",
          "dataset": "titanic-data", "metric": "accuracy", "higher_is_better": True, "daily_cap": 3,
          "description": "d", "rules": "r", "remaining_today": 2, "max_upload_bytes": 10_485_760,
          "has_private_board": False,
          "submission_formats": [{"header": "PassengerId,Survived", "description": "one row per id"}]}
C = "/external/competitions/titanic-survival"


def submission(status: str, score=None, **extra) -> dict:
    return {"id": 41, "competition": "titanic-survival", "status": status, "description": "first",
            "rows": 5, "size_bytes": 40, "sha256": "x", "error": "", "created_at": "2026-01-02T10:00:00Z",
            "scored_at": None, "score": score, "private_score": None, **extra}


def test_submit_wait_prints_score_and_rank(cli, logged_in, tmp_path):
    csv = tmp_path / "preds.csv"
    csv.write_text("PassengerId,Survived\n1,0\n")
    api = FakeApi()
    api.add("GET", C, envelope(DETAIL))
    api.add("POST", C + "/submissions", envelope({**submission("queued"), "daily_cap": 3, "remaining_today": 1}, 201))
    api.add("GET", C + "/submissions/me", [page([submission("queued")]), page([submission("scoring")]),
                                           page([submission("scored", 0.8)])])
    api.add("GET", "/me", envelope({"handle": "ada"}))
    api.add("GET", C + "/leaderboard", page([
        {"rank": 1, "handle": "bob", "display_name": "Bob", "score": 0.9, "submission_count": 2, "best_at": None},
        {"rank": 2, "handle": "ada", "display_name": "Ada", "score": 0.8, "submission_count": 1, "best_at": None}]))
    result = cli("competitions", "submit", "titanic-survival", str(csv), "-m", "first", "--wait",
                 transport=api.transport)
    assert result.exit_code == 0, result
    assert "Scored 0.8: rank 2 on the public leaderboard." in result.stderr
    assert "1 of 3 left today" in result.stderr
    out = result.json()
    assert out["submission"]["score"] == 0.8 and out["leaderboard"]["rank"] == 2
    upload = api.calls("POST", C + "/submissions")[0]
    assert upload.headers["content-type"].startswith("multipart/form-data")
    assert b'name="description"' in upload.content and b"first" in upload.content
    assert b'filename="preds.csv"' in upload.content and b"PassengerId,Survived\n1,0\n" in upload.content


def test_submit_rejected_and_capped(cli, logged_in, tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("x\n")
    api = FakeApi().add("GET", C, envelope(DETAIL))
    api.add("POST", C + "/submissions", [
        problem(422, "submission_invalid", "The file has 1 problem.",
                errors=[{"line": 1, "field": None, "message": "header must be PassengerId,Survived",
                         "code": "header"}]),
        problem(429, "submission_cap_reached", "Daily cap reached.", headers={"Retry-After": "600"})])
    result = cli("competitions", "submit", "titanic-survival", str(csv), transport=api.transport)
    assert result.exit_code == errors.USAGE
    assert "submission_invalid" in result.stderr and "line 1: header must be" in result.stderr
    result = cli("competitions", "submit", "titanic-survival", str(csv), transport=api.transport)
    assert result.exit_code == errors.CONFLICT and "retry after 600s" in result.stderr


def test_submit_wait_exits_1_when_scoring_fails(cli, logged_in, tmp_path):
    csv = tmp_path / "p.csv"
    csv.write_text("PassengerId,Survived\n")
    api = FakeApi().add("GET", C, envelope(DETAIL))
    api.add("POST", C + "/submissions", envelope({**submission("queued"), "daily_cap": 3, "remaining_today": 1}, 201))
    api.add("GET", C + "/submissions/me", page([submission("failed", error="manifest invalid")]))
    result = cli("competitions", "submit", "titanic-survival", str(csv), "--wait", transport=api.transport)
    assert result.exit_code == errors.FAILED and "manifest invalid" in result.stderr


def test_submissions_show_what_is_left_today(cli, logged_in):
    api = FakeApi().add("GET", C, envelope(DETAIL))
    api.add("GET", C + "/submissions/me", page([submission("scored", 0.8)]))
    result = cli("competitions", "submissions", "titanic-survival", transport=api.transport)
    assert result.json()["remaining_today"] == 2 and result.json()["submissions"][0]["score"] == 0.8
    table = cli("competitions", "submissions", "titanic-survival", "-o", "table", transport=api.transport)
    assert "2 of 3 submissions left today" in table.stderr and "0.8" in table.stdout


def test_download_writes_files_and_skips_present_ones(cli, logged_in, tmp_path):
    files = [{"name": "test_ids.csv", "area": "public", "size": 4, "modified": "2026-01-01T00:00:00Z",
              "url": "/api/v2/external/datasets/titanic-data/files/test_ids.csv"},
             {"name": "train/part-1.csv", "area": "training", "size": 3, "modified": "2026-01-01T00:00:00Z",
              "url": "/api/v2/external/datasets/titanic-data/files/train/part-1.csv"}]
    import httpx

    api = FakeApi().add("GET", C, envelope(DETAIL))
    api.add("GET", "/external/datasets/titanic-data/files", page(files))
    api.add("GET", "/external/datasets/titanic-data/files/test_ids.csv", httpx.Response(200, content=b"id\n1"))
    api.add("GET", "/external/datasets/titanic-data/files/train/part-1.csv", httpx.Response(200, content=b"a,b"))
    result = cli("competitions", "download", "titanic-survival", "-d", str(tmp_path / "data"), transport=api.transport)
    assert result.exit_code == 0, result
    assert (tmp_path / "data" / "test_ids.csv").read_bytes() == b"id\n1"
    assert (tmp_path / "data" / "train" / "part-1.csv").read_bytes() == b"a,b"
    assert [r["status"] for r in result.json()] == ["downloaded", "downloaded"]
    again = cli("competitions", "download", "titanic-survival", "test_ids.csv", "-d", str(tmp_path / "data"),
                transport=api.transport)
    assert [r["status"] for r in again.json()] == ["present"]
    missing = cli("competitions", "download", "titanic-survival", "nope.csv", transport=api.transport)
    assert missing.exit_code == errors.NOT_FOUND


def test_download_refuses_names_that_leave_the_folder(cli, logged_in, tmp_path):
    api = FakeApi().add("GET", C, envelope(DETAIL))
    api.add("GET", "/external/datasets/titanic-data/files", page([
        {"name": "../evil.csv", "area": "public", "size": 1, "modified": None, "url": "/x"}]))
    result = cli("competitions", "download", "titanic-survival", "-d", str(tmp_path / "d"), transport=api.transport)
    assert result.exit_code == errors.FAILED and "leaves the folder" in result.stderr
    assert not (tmp_path / "evil.csv").exists()


def test_public_reads_need_no_token(cli, monkeypatch):
    monkeypatch.setenv("MEDFORGE_URL", "https://medforge.test")
    api = FakeApi().add("GET", C + "/leaderboard", page([
        {"rank": 1, "handle": "bob", "display_name": "Bob", "score": 0.9, "submission_count": 2,
         "best_at": "2026-01-02T10:00:00Z"}]))
    api.add("GET", "/external/competitions", page([DETAIL]))
    result = cli("competitions", "leaderboard", "titanic-survival", "-o", "csv", transport=api.transport)
    assert result.exit_code == 0, result
    assert result.stdout.splitlines()[1].startswith("1,bob,Bob,0.9,2,")
    assert "authorization" not in api.requests[0].headers
    assert api.requests[0].url.params["board"] == "public"
    assert cli("competitions", "list", transport=api.transport).json()[0]["slug"] == "titanic-survival"
    assert cli("competitions", "submissions", "titanic-survival", transport=api.transport).exit_code == errors.AUTH


def test_pagination_follows_the_cursor(cli, logged_in):
    api = FakeApi().add("GET", "/external/sessions", [
        page([session()], next_cursor="c2"), page([session("stopped", slug="zzzz2345")])])
    result = cli("sessions", "list", transport=api.transport)
    assert [s["slug"] for s in result.json()] == ["abcd2345", "zzzz2345"]
    assert api.requests[1].url.params["cursor"] == "c2"
