"""Competition list and detail per surface: what a signed-in user sees (rendered description,
accepted formats, remaining submissions today), and what another surface hides."""
from __future__ import annotations

from competitions.models import Competition, Dataset
from competitions.seeding import CIFAR, RSNA, TITANIC
from testkit.api import assert_envelope, assert_problem, schema_validator

LIST = "/api/v2/external/competitions"


def test_list_shows_the_surface_s_active_competitions(seeded, owner, client_for):
    ds = Dataset.objects.create(slug="internal-ds", title="x", exposure="internal")
    Competition.objects.create(slug="internal-only", title="x", exposure="internal", dataset=ds, metric="accuracy")
    Competition.objects.filter(slug=CIFAR).update(is_active=False)
    resp = client_for(owner).get(LIST)
    schema_validator().validate("GET", LIST, resp)
    assert [c["slug"] for c in assert_envelope(resp)] == [RSNA, TITANIC]


def test_detail_has_rendered_markdown_formats_and_remaining_today(seeded, owner, client_for):
    url = f"{LIST}/{RSNA}"
    resp = client_for(owner).get(url)
    schema_validator().validate("GET", url, resp)
    body = assert_envelope(resp)
    assert body["metric"] == "rsna_map" and body["daily_cap"] == 10 and body["remaining_today"] == 10
    assert "<code>patientId,PredictionString</code>" in body["description_html"]
    assert [f["header"] for f in body["submission_formats"]] == [
        "patientId,PredictionString", "patientId,confidence,x,y,width,height"]
    assert body["has_private_board"] is False and body["private_board_visible"] is False
    titanic = assert_envelope(client_for(owner).get(f"{LIST}/{TITANIC}"))
    assert titanic["has_private_board"] is True


def test_internal_surface(seeded, owner, entitled, admin, client_for):
    assert_problem(client_for(owner).get("/api/v2/internal/competitions"), 403, "internal_access_required")
    assert assert_envelope(client_for(entitled).get("/api/v2/internal/competitions")) == []
    assert_problem(client_for(admin).get(f"/api/v2/internal/competitions/{TITANIC}"), 404, "competition_not_found")
