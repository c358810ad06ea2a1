"""The platform in a real headless Chromium, walked as a new user would.

Real components: Debian's chromium driven by Playwright, the app served on loopback by
pytest-django's live_server on MariaDB and Redis, Caddy in front of session hosts with
forward auth to that app, and a real session container from the local pack on Docker
(through sessions_app's start/stop tasks). The only stand-in is the broker: lifecycle and
scoring tasks are run by this test, in a thread of its own, when it chooses — so the page can
be seen `starting` (and a submission `queued`) before the work happens and the live update
can be observed without a reload.

Screenshots of every main page go to test-output/screenshots/.
"""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from competitions import services as comp_services
from competitions.models import Submission
from medforge.accounts.factories import DEFAULT_PASSWORD, AdminFactory
from sessions_app import dispatch
from sessions_app import tasks as session_tasks
from sessions_app.factories import GPUFactory
from sessions_app.models import GPU, Session
from sessions_app.services import pack_register_local

from .conftest import HOLDOUT, make_competition

pytestmark = [pytest.mark.browser, pytest.mark.docker, pytest.mark.caddy, pytest.mark.slow,
              pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "test-output" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]
ROUTING_CADDYFILE = REPO / "deploy" / "caddy" / "Caddyfile.local"


# --- components -----------------------------------------------------------------------------


def _ensure_system_package(binary: str, packages: list[str]) -> str:
    """The binary, installed with apt when missing (as the test command does); never skipped."""
    if not shutil.which(binary) and not os.path.exists(binary):
        done = subprocess.run(["apt-get", "install", "-y", *packages], check=False,
                              capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            pytest.fail(f"cannot install {packages}: {done.stderr[-1500:]}")
    return shutil.which(binary) or binary


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_port(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    pytest.fail(f"nothing answers on 127.0.0.1:{port}")


@pytest.fixture(scope="module")
def caddy(live_server, tmp_path_factory):
    """Caddy with the project's local Caddyfile on a free loopback port, in front of the live
    app (platform hosts) and of session hosts (forward auth to the live app)."""
    binary = _ensure_system_package("caddy", ["caddy"])
    port = _free_port()
    folder = tmp_path_factory.mktemp("caddy")
    config = folder / "Caddyfile"
    if not ROUTING_CADDYFILE.exists():
        pytest.fail(f"{ROUTING_CADDYFILE} is missing (the routing suite's local Caddyfile)")
    config.write_text(ROUTING_CADDYFILE.read_text())
    app = live_server.url.rsplit(":", 1)[1]
    env = {**os.environ, "MEDFORGE_EDGE_PORT": str(port),
           "MEDFORGE_APP_UPSTREAM": f"127.0.0.1:{app}",
           "MEDFORGE_BASE_DOMAIN": settings.BASE_DOMAIN, "XDG_DATA_HOME": str(folder),
           "XDG_CONFIG_HOME": str(folder), "HOME": str(folder)}
    proc = subprocess.Popen([binary, "run", "--config", str(config), "--adapter", "caddyfile"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        _wait_port(port)
    except BaseException:
        proc.kill()
        raise
    yield port
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def chromium():
    """Debian's chromium, headless, with a fresh profile per context."""
    _ensure_system_package(CHROMIUM, ["chromium"])
    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes
    # between browser steps are plain synchronous ones.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def site(live_server) -> str:
    """The app's URL on the platform host name (`*.localhost` resolves to loopback), so the
    cookie domain and the host-based surface work as in production."""
    port = live_server.url.rsplit(":", 1)[1]
    return f"http://{settings.BASE_DOMAIN}:{port}"


@pytest.fixture
def open_page(chromium):
    contexts = []

    def make():
        context = chromium.new_context(viewport={"width": 1280, "height": 860})
        context.set_default_timeout(20_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


class Worker:
    """Stands in for the Celery worker: tasks the services queue wait here until the test
    runs them (each in its own thread, as a worker process would)."""

    def __init__(self) -> None:
        self.queued: list[tuple[str, str]] = []
        self.threads: list[threading.Thread] = []

    def send(self, name: str, session_id: str) -> None:
        self.queued.append((name, session_id))

    def run(self, name: str) -> None:
        task_name, session_id = next(q for q in self.queued if q[0] == name)
        self.queued.remove((task_name, session_id))

        def work():
            try:
                getattr(session_tasks, task_name).apply(args=[session_id], throw=True)
            finally:
                connection.close()

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        self.threads.append(thread)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=90)


@pytest.fixture
def worker():
    w = Worker()
    dispatch.set_sender(w.send)
    yield w
    w.join()
    dispatch.set_sender(None)


def nav(page, navigation: str, link: str):
    """A link of one named navigation landmark (the same words may appear in the page)."""
    return page.get_by_role("navigation", name=navigation).get_by_role("link", name=link,
                                                                        exact=True)


def sign_up(page, site: str, *, handle: str, email: str) -> None:
    page.goto(site + "/")
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Handle").fill(handle)
    page.get_by_label("Display name").fill(handle.title())
    page.get_by_label("Password", exact=True).fill("a-long-enough-pass")
    page.get_by_label("Password (again)").fill("a-long-enough-pass")
    page.get_by_role("button", name="Sign up").click()
    page.get_by_role("heading", name=f"Hello, {handle.title()}").wait_for()


# --- the walks ------------------------------------------------------------------------------


def test_new_user_runs_a_session_opens_the_ide_through_caddy_and_stops_it(
        open_page, site, caddy, docker_sessions, local_image, worker, settings):
    from playwright.sync_api import expect

    settings.PUBLIC_PORT = caddy
    GPUFactory(index=0, name="Simulated GPU")
    GPUFactory(index=1, name="Simulated GPU")
    pack_register_local(image_id=local_image)

    page = open_page()
    page.goto(site + "/")
    shot(page, "landing")
    sign_up(page, site, handle="ada", email="ada@example.org")
    shot(page, "dashboard")

    nav(page, "Main", "Sessions").click()
    expect(page.get_by_role("heading", name="No session running")).to_be_visible()
    page.get_by_label("Environment (pack)").select_option(label="Local stand-in IDE (default)")
    page.get_by_role("button", name="Start session").click()

    # Starting, with its first event, before any work is done...
    live = page.locator("section.live")
    expect(live.locator(".badge")).to_have_text("starting")
    expect(live).to_contain_text("Session requested on GPU 0")
    shot(page, "session-starting")
    page.evaluate("window.__sameDocument = true")
    # ...then the worker starts the container, and the page turns to running by itself.
    worker.run("start_session")
    expect(live.locator(".badge")).to_have_text("running", timeout=90_000)
    assert page.evaluate("window.__sameDocument") is True, "the page reloaded"
    assert live.locator(".progress li").count() >= 2
    session = Session.objects.get(owner__handle="ada")
    assert session.status == "running"
    shot(page, "session-running")

    # The IDE link goes to the session host on Caddy, which asks the app (forward auth).
    ide_link = page.get_by_role("link", name="Open IDE")
    assert ide_link.get_attribute("href") == (
        f"http://s-{session.slug}.external.{settings.BASE_DOMAIN}:{caddy}/")
    with page.context.expect_page() as opened:
        ide_link.click()
    ide = opened.value
    ide.wait_for_load_state()
    expect(ide.get_by_role("heading", name="MedForge stand-in IDE")).to_be_visible()
    expect(ide.locator("#session-id")).to_have_text(str(session.pk))
    shot(ide, "ide-through-caddy")
    ide.close()

    # A browser without the platform cookie is sent by the edge to the login page, with the
    # IDE as `next`; signing in there as the owner lands on the IDE.
    other = open_page()
    ide_url = f"http://s-{session.slug}.external.{settings.BASE_DOMAIN}:{caddy}/"
    other.goto(ide_url)
    assert other.url.startswith(f"http://{settings.BASE_DOMAIN}:{caddy}/login/?next=")
    expect(other.get_by_role("heading", name="MedForge stand-in IDE")).to_have_count(0)
    other.get_by_label("Email").fill("ada@example.org")
    other.get_by_label("Password").fill("a-long-enough-pass")
    other.get_by_role("button", name="Sign in").click()
    expect(other.get_by_role("heading", name="MedForge stand-in IDE")).to_be_visible()
    assert other.url == ide_url

    # Stop, with confirmation; the page follows stopping → stopped and shows the snapshot.
    page.get_by_role("link", name="Stop…").click()
    shot(page, "session-stop-confirm")
    page.get_by_role("button", name="Stop the session").click()
    expect(live.locator(".badge")).to_have_text("stopping")
    page.evaluate("window.__sameDocument = true")
    worker.run("stop_session")
    expect(live.locator(".badge")).to_have_text("stopped", timeout=90_000)
    assert page.evaluate("window.__sameDocument") is True
    expect(live.locator(".snapshot code")).to_have_text(re.compile(r"^stop-\d+$"))
    snapshot_name = live.locator(".snapshot code").inner_text()

    page.get_by_role("link", name="← All sessions").click()
    history = page.locator("table").filter(has_text=f"s-{session.slug}")
    expect(history).to_contain_text("stopped")
    expect(history).to_contain_text(snapshot_name)
    shot(page, "sessions")


def test_submissions_invalid_then_valid_scored_and_on_the_leaderboard(
        open_page, site, data_roots, settings, monkeypatch):
    from playwright.sync_api import expect

    from competitions import tasks as comp_tasks

    queued: list[int] = []
    monkeypatch.setattr(comp_tasks.score_submission, "delay", lambda sid: queued.append(sid))
    competition = make_competition(settings)
    folder = data_roots / "uploads"
    folder.mkdir()
    bad = folder / "bad.csv"
    bad.write_text("PassengerId,Survived\n1,0\n2,yes\n3,1\n3,1\n")
    good = folder / "good.csv"
    good.write_text("PassengerId,Survived\n" + "".join(f"{k},{v}\n" for k, v in HOLDOUT.items()))

    page = open_page()
    sign_up(page, site, handle="grace", email="grace@example.org")
    nav(page, "Main", "Competitions").click()
    shot(page, "competitions")
    page.get_by_role("link", name=competition.title).click()
    expect(page.get_by_role("heading", name="Who survived?")).to_be_visible()
    expect(page.get_by_test_id("remaining-today")).to_have_text("3")
    expect(page.locator(".files")).to_contain_text("public/sample_submission.csv")
    shot(page, "competition-detail")

    page.get_by_role("link", name="Submit predictions").click()
    page.get_by_label("Predictions (CSV)").set_input_files(str(bad))
    page.get_by_role("button", name="Upload and score").click()
    errors = page.get_by_test_id("upload-errors")
    expect(errors).to_contain_text("Line 3")
    expect(errors).to_contain_text("Line 5")
    expect(page.locator(".error-summary")).to_be_focused()
    assert page.get_by_label("Predictions (CSV)").get_attribute("aria-invalid") == "true"
    expect(page.get_by_test_id("remaining-today")).to_have_text("3")
    assert Submission.objects.count() == 0
    shot(page, "submit-invalid")

    page.get_by_label("Predictions (CSV)").set_input_files(str(good))
    page.get_by_label("Description").fill("all correct")
    page.get_by_role("button", name="Upload and score").click()
    expect(page.get_by_role("heading", name="My submissions")).to_be_visible()
    row = page.locator("tr[data-submission]").first
    expect(row.locator(".badge")).to_have_text("queued")
    page.evaluate("window.__sameDocument = true")
    assert len(queued) == 1
    # The scoring worker runs now; the table turns to scored without a reload.
    thread = threading.Thread(target=lambda: (
        comp_services.submission_score(submission_id=queued[0]), connection.close()))
    thread.start()
    thread.join(timeout=60)
    expect(row.locator(".badge")).to_have_text("scored", timeout=20_000)
    expect(row.get_by_test_id("score")).to_have_text("1.00000")
    assert page.evaluate("window.__sameDocument") is True
    shot(page, "my-submissions")

    nav(page, "Competition", "Leaderboard").click()
    first = page.locator("table.leaderboard tbody tr").first
    expect(first).to_contain_text("@grace")
    expect(first.locator(".rank")).to_have_text("1")
    expect(page.locator("svg.chart")).to_be_visible()
    shot(page, "leaderboard")


def test_admin_disables_a_gpu(open_page, site, db):
    from playwright.sync_api import expect

    AdminFactory(email="root@example.org", handle="root")
    GPUFactory(index=0, name="Simulated GPU")
    GPUFactory(index=1, name="Simulated GPU")

    page = open_page()
    page.goto(site + "/login/")
    page.get_by_label("Email").fill("root@example.org")
    page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    nav(page, "Main", "Admin").click()
    expect(page.get_by_role("link", name="django-admin", exact=True).first).to_be_visible()
    nav(page, "Admin", "GPUs").click()
    page.get_by_label("Reason to disable GPU 1").fill("fan failure")
    page.get_by_role("button", name="Disable GPU 1").click()
    expect(page.get_by_role("status").filter(has_text="GPU 1 is disabled")).to_be_visible()
    expect(page.locator("tr[data-gpu='1'] .badge-disabled")).to_be_visible()
    assert GPU.objects.get(index=1).enabled is False
    assert GPU.objects.get(index=0).enabled is True
    shot(page, "admin-gpus")

    # The small screen layout: the menu collapses behind a toggle and pages stay usable.
    page.set_viewport_size({"width": 390, "height": 800})
    page.goto(site + "/status/")
    expect(page.get_by_role("heading", name="Platform status")).to_be_visible()
    shot(page, "status-mobile")
