"""The two Caddyfiles, adapted by the real caddy binary: both load, and production routes session
hosts exactly as the local file does (which the end-to-end suite exercises)."""
from __future__ import annotations

import json
import re

import pytest

from routing.edge import LOCAL_CADDYFILE, PRODUCTION_CADDYFILE, adapt

pytestmark = pytest.mark.caddy

PROD_ENV = {"MEDFORGE_BASE_DOMAIN": "medforge.example.org", "ACME_EMAIL": "ops@example.org",
            "ACME_DNS_API_TOKEN": "token", "MEDFORGE_APP_UPSTREAM": "api:8000"}
LOCAL_ENV = {"MEDFORGE_BASE_DOMAIN": "medforge.example.org", "MEDFORGE_EDGE_PORT": "18000",
             "MEDFORGE_APP_UPSTREAM": "api:8000"}


@pytest.fixture(scope="module")
def production(tmp_path_factory):
    text = PRODUCTION_CADDYFILE.read_text()
    # Debian's caddy has no DNS provider module; the shipped image (deploy/caddy/Dockerfile)
    # does. Everything else is adapted as written.
    assert re.search(r"^\s*acme_dns cloudflare \{\$ACME_DNS_API_TOKEN\}$", text, re.MULTILINE)
    stripped = tmp_path_factory.mktemp("caddy") / "Caddyfile"
    stripped.write_text(re.sub(r"^\s*acme_dns .*$", "", text, flags=re.MULTILINE))
    return adapt(stripped, PROD_ENV)


@pytest.fixture(scope="module")
def local():
    return adapt(LOCAL_CADDYFILE, LOCAL_ENV)


def _site(config: dict, host: str) -> dict:
    for server in config["apps"]["http"]["servers"].values():
        for route in server["routes"]:
            for match in route.get("match", []):
                if host in match.get("host", []):
                    return route
    raise AssertionError(f"no site for {host}")


def _session_route(config: dict) -> list:
    route = _site(config, "*.external.medforge.example.org")
    assert route == _site(config, "*.internal.medforge.example.org")
    return route["handle"]


def test_production_serves_every_host_over_tls(production):
    servers = production["apps"]["http"]["servers"]
    listens = {addr for s in servers.values() for addr in s["listen"]}
    assert ":443" in listens
    for host in ("medforge.example.org", "external.medforge.example.org",
                 "internal.medforge.example.org", "api.medforge.example.org"):
        route = _site(production, host)
        assert '"dial": "api:8000"' in json.dumps(route)
    assert all(not s.get("automatic_https", {}).get("disable") for s in servers.values())


def test_both_files_route_session_hosts_identically(production, local):
    assert _session_route(production) == _session_route(local)


def test_local_listens_on_loopback_only(local):
    servers = local["apps"]["http"]["servers"]
    assert {addr for s in servers.values() for addr in s["listen"]} == {"127.0.0.1:18000"}
    assert local["admin"] == {"disabled": True}


def _handlers_in_order(handlers: list) -> list:
    out = []
    for h in handlers:
        if h.get("handler") == "subroute":
            for route in h["routes"]:
                out += _handlers_in_order(route["handle"])
        else:
            out.append(h)
    return out


def test_session_route_strips_spoofed_headers_before_forward_auth(local):
    handlers = _handlers_in_order(_session_route(local))
    auth = next(i for i, h in enumerate(handlers)
                if h["handler"] == "reverse_proxy" and "rewrite" in h)
    deleted_before_auth = [name for h in handlers[:auth]
                           for name in h.get("request", {}).get("delete", [])]
    assert {"X-Upstream", "X-Medforge-Upstream"} <= set(deleted_before_auth)
    assert {"Connection", "Upgrade"} <= set(handlers[auth]["headers"]["request"]["delete"])
    proxy = handlers[-1]
    assert proxy["handler"] == "reverse_proxy"
    assert {"Authorization", "X-Medforge-Upstream"} <= set(proxy["headers"]["request"]["delete"])
