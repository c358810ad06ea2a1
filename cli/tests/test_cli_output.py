"""Formatting: the default by TTY, table/json/csv of lists and objects, humanised values, and
the rule that columns read only declared fields."""
from __future__ import annotations

import io
import json

import pytest
from cli_fakes import session
from medforge_cli.api_fields import UndeclaredField, get, item_get, items, session_of
from medforge_cli.errors import UsageError
from medforge_cli.output import (
    Column,
    Format,
    choose_format,
    human_size,
    human_time,
    raw,
    render,
)


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_table_on_a_terminal_json_when_piped(monkeypatch):
    assert choose_format(None, stream=Tty()) is Format.table
    assert choose_format(None, stream=io.StringIO()) is Format.json
    assert choose_format("csv", stream=Tty()) is Format.csv
    monkeypatch.setenv("MEDFORGE_FORMAT", "CSV")
    assert choose_format(None, stream=Tty()) is Format.csv
    assert choose_format(Format.json, stream=Tty()) is Format.json
    monkeypatch.setenv("MEDFORGE_FORMAT", "yaml")
    with pytest.raises(UsageError):
        choose_format(None)


COLUMNS = [Column("slug", "session", "slug"), Column("pack", "session", "pack.slug"),
           Column("gpu", "session", "gpu.index"), Column("created", "session", "created_at", human_time)]


def test_json_prints_the_objects_whole(capsys):
    rows = [session(), session("stopped", slug="zzzz2345")]
    render(rows, COLUMNS, Format.json, many=True)
    assert json.loads(capsys.readouterr().out) == rows


def test_csv_has_field_paths_as_header_and_raw_values(capsys):
    rows = [session(), {**session("error"), "gpu": None, "pack": {"slug": "x,y"}}]
    render(rows, COLUMNS + [Column("ide", "session", "ide_url")], Format.csv, many=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "slug,pack.slug,gpu.index,created_at,ide_url"
    assert lines[1] == "abcd2345,default,0,2026-01-02T10:00:00Z,https://s-abcd2345.external.medforge.test/"
    assert lines[2] == 'abcd2345,"x,y",,2026-01-02T10:00:00Z,'


def test_table_of_a_list_and_of_one_object(capsys):
    render([session()], COLUMNS, Format.table, many=True)
    out = capsys.readouterr().out
    assert "slug" in out and "abcd2345" in out and "default" in out
    render(session(), COLUMNS, Format.table, many=False)
    out = capsys.readouterr().out
    assert "pack" in out and "default" in out and "gpu" in out
    render([], COLUMNS, Format.table, many=True, empty="No sessions.")
    captured = capsys.readouterr()
    assert captured.out == "" and "No sessions." in captured.err


def test_values():
    assert raw(None) == "" and raw(True) == "true" and raw(False) == "false"
    assert raw({"a": 1}) == '{"a":1}' and raw(3) == "3"
    assert human_size(None) == "-" and human_size(512) == "512 B"
    assert human_size(1536) == "1.5 KiB" and human_size(5 * 1024 ** 3) == "5.0 GiB"
    assert human_time(None) == "-" and human_time("not a time") == "not a time"
    assert len(human_time("2026-01-02T10:00:00.123456Z")) == 19


def test_fields_are_read_only_when_declared():
    s = session()
    assert get("session", s, "pack.slug") == "default"
    assert get("session", {"pack": None}, "pack.slug", "-") == "-"
    assert get("session", s, "pack") == s["pack"]  # the parent of a declared path
    with pytest.raises(UndeclaredField):
        get("session", s, "upstream")  # the admin-only field: never read by the CLI
    with pytest.raises(UndeclaredField):
        get("nonsense", s, "id")
    snap = {"name": "ws@stop-1", "id": "x"}
    assert items("session", {"snapshots": [snap]}, "snapshots") == [snap]
    assert item_get("session", "snapshots", snap, "name") == "ws@stop-1"
    with pytest.raises(UndeclaredField):
        item_get("session", "snapshots", snap, "path")


def test_session_of_accepts_both_action_shapes():
    s = session()
    assert session_of(s) == s
    assert session_of({"session": s, "message": "Starting."}) == s
    assert session_of(None) == {}
