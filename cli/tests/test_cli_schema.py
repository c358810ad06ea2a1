"""Every response field the CLI reads (medforge_cli.api_fields) exists in the OpenAPI schema the
platform serves at /api/v2/schema/, in the operation the CLI reads it from."""
from __future__ import annotations

import copy

import pytest
from cli_schema_check import problems
from django.test import Client
from medforge_cli.api_fields import FIELDS, OPERATIONS


@pytest.fixture(scope="module")
def served_schema():
    response = Client().get("/api/v2/schema/", {"format": "json"})  # reads no table
    assert response.status_code == 200, response.content[:300]
    return response.json()


def test_every_field_the_cli_reads_is_in_the_served_schema(served_schema):
    assert problems(served_schema) == []


def test_every_declared_kind_is_read_by_some_operation():
    used = {op.kind for op in OPERATIONS} | {"problem", "meta"}
    assert set(FIELDS) <= used


def test_the_check_notices_a_missing_field(served_schema):
    broken = copy.deepcopy(served_schema)
    del broken["components"]["schemas"]["Session"]["properties"]["ide_url"]
    del broken["components"]["schemas"]["LeaderboardRow"]["properties"]["rank"]
    found = problems(broken)
    assert any("`ide_url`" in line and "/sessions/{session_id}" in line for line in found), found
    assert any("`rank`" in line and "leaderboard" in line for line in found), found
