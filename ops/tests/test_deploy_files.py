"""The deployment files hold together: compose structure and pinning, the production
Caddyfile against compose and the Django routes, Prometheus rules (promtool + a parse that
checks every metric they use exists), the Grafana dashboard, .env.example covering every
setting, and the host scripts."""
from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "deploy" / "compose" / "docker-compose.yml"
CADDYFILE = REPO / "deploy" / "caddy" / "Caddyfile"
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
PROM_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "medforge-overview.json"
RUNBOOK = REPO / "docs" / "runbook.md"
REQUIRED_SERVICES = {"db", "redis", "api", "worker", "beat", "caddy"}
_VAR = re.compile(r"\$\{([A-Z0-9_]+)(?::?[-?]([^}]*))?\}")


def interpolate(value: str) -> str:
    """Resolve compose's ${VAR:-default} with the defaults (what an empty .env gives)."""
    for _ in range(3):  # nested defaults such as ${A:-x.${B}}
        value = _VAR.sub(lambda m: m.group(2) or "", value)
    return value


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_has_the_platform_services_with_healthchecks_restart_and_log_rotation(compose):
    services = compose["services"]
    assert REQUIRED_SERVICES <= set(services)
    for name, svc in services.items():
        assert svc.get("restart") in ("unless-stopped", "always"), name
        test = svc.get("healthcheck", {}).get("test")
        assert test and test != ["NONE"], f"{name} has no healthcheck"
        logging = svc.get("logging", {})
        assert logging.get("driver") == "json-file", name
        assert logging["options"]["max-size"] and int(logging["options"]["max-file"]) >= 2, name


def test_no_privileged_service_and_only_the_worker_holds_the_docker_socket(compose):
    text = COMPOSE.read_text()
    assert not re.search(r"^\s*privileged:\s*true", text, re.MULTILINE)
    for name, svc in compose["services"].items():
        assert not svc.get("privileged"), name
        assert svc.get("network_mode") != "host", name
        mounts = json.dumps(svc.get("volumes", []))
        assert ("docker.sock" in mounts) == (name == "worker"), name
        if name != "worker":
            assert "SYS_ADMIN" not in (svc.get("cap_add") or []), name
    # The runbook says why the worker is trusted with the socket and SYS_ADMIN.
    runbook = RUNBOOK.read_text()
    assert "Why the worker is trusted" in runbook and "docker.sock" in runbook


def test_pulled_images_are_pinned_by_digest_built_ones_are_built_here(compose):
    for name, svc in compose["services"].items():
        image = interpolate(svc.get("image", ""))
        if "build" in svc:
            context = (COMPOSE.parent / svc["build"]["context"]).resolve()
            dockerfile = context / svc["build"].get("dockerfile", "Dockerfile")
            assert dockerfile.is_file(), (name, dockerfile)
        else:
            assert re.fullmatch(r"[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}", image), (name, image)


def test_api_image_dockerfile_pins_its_base_and_has_an_entrypoint():
    dockerfile = (REPO / "deploy" / "docker" / "Dockerfile").read_text()
    assert re.search(r"ARG PYTHON_IMAGE=\S+@sha256:[0-9a-f]{64}", dockerfile)
    entrypoint = REPO / "deploy" / "docker" / "entrypoint.sh"
    assert entrypoint.stat().st_mode & 0o111
    assert subprocess.run(["bash", "-n", str(entrypoint)], check=False).returncode == 0
    assert "PROMETHEUS_MULTIPROC_DIR" in entrypoint.read_text()


def test_session_networks_fixed_ips_and_internal_flag(compose, settings):
    nets = compose["networks"]
    by_name = {interpolate(n.get("name", key)): (key, n) for key, n in nets.items()}
    ext_key, ext = by_name[settings.SESSION_EXTERNAL_NETWORK]
    int_key, internal = by_name[settings.SESSION_INTERNAL_NETWORK]
    assert internal.get("internal") is True, "INTERNAL sessions must have no egress"
    assert not ext.get("internal")
    subnets = {}
    for key, net in nets.items():
        subnets[key] = ipaddress.ip_network(interpolate(net["ipam"]["config"][0]["subnet"]))
    nets_list = list(subnets.values())
    assert all(not a.overlaps(b) for i, a in enumerate(nets_list) for b in nets_list[i + 1:])
    addresses = set()
    for svc_name in ("caddy", "worker"):
        svc_nets = compose["services"][svc_name]["networks"]
        for key in (ext_key, int_key):
            ip = ipaddress.ip_address(interpolate(svc_nets[key]["ipv4_address"]))
            assert ip in subnets[key], (svc_name, key, ip)
            addresses.add(ip)
    assert len(addresses) == 4
    # No other service sits on a session network.
    for name, svc in compose["services"].items():
        if name not in ("caddy", "worker"):
            attached = svc.get("networks", [])
            assert ext_key not in attached and int_key not in attached, name


def test_production_caddyfile_matches_compose_and_the_django_routes(compose):
    from django.urls import resolve

    assert CADDYFILE.is_file(), "deploy/caddy/Caddyfile (routing) is missing"
    # Directives only: comments mention directive names too.
    text = "\n".join(line for line in CADDYFILE.read_text().splitlines()
                     if not line.lstrip().startswith("#"))
    caddy_env = compose["services"]["caddy"]["environment"]
    used = set(re.findall(r"\{\$([A-Z0-9_]+)", text))
    assert used and used <= set(caddy_env), f"Caddyfile needs {used - set(caddy_env)} from compose"
    # The app upstream Caddy proxies to is the api service's gunicorn port.
    assert interpolate(caddy_env["MEDFORGE_APP_UPSTREAM"]) == "api:8000"
    assert "0.0.0.0:8000" in (REPO / "deploy" / "docker" / "gunicorn.conf.py").read_text()
    # forward_auth targets the real Django route; client copies of upstream headers are stripped.
    uri = re.search(r"forward_auth\s.*?\buri\s+(\S+)", text, re.DOTALL).group(1)
    assert resolve(uri).url_name
    for header in re.findall(r"copy_headers\s+(\S+)", text)[0].split(">"):
        assert re.search(rf"request_header\s+-{re.escape(header)}\b", text), header
    # The caddy healthcheck reads the admin endpoint: it must not be turned off.
    assert not re.search(r"^\s*admin\s+off", text, re.MULTILINE)
    assert "2019" in json.dumps(compose["services"]["caddy"]["healthcheck"]["test"])
    mounts = json.dumps(compose["services"]["caddy"]["volumes"])
    assert "../caddy/Caddyfile:/etc/caddy/Caddyfile" in mounts


def test_env_example_documents_every_setting():
    settings_py = (REPO / "medforge" / "settings.py").read_text()
    names = set(re.findall(r"\benv(?:\.\w+)?\(\s*\"([A-Z0-9_]+)\"", settings_py))
    names |= set(re.findall(r"os\.environ\.get\(\"([A-Z0-9_]+)\"", settings_py))
    assert len(names) > 40
    example = (REPO / "deploy" / "compose" / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z0-9_]+)(?:=|\s)", example, re.MULTILINE))
    assert names - documented == set(), f"undocumented: {sorted(names - documented)}"
    # And every variable compose interpolates is documented too.
    compose_vars = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE.read_text()))
    assert compose_vars - documented == set(), sorted(compose_vars - documented)


# --- Prometheus ----------------------------------------------------------------------------


def _promtool() -> str:
    path = shutil.which("promtool")
    assert path, ("promtool not found: install Debian's `prometheus` package "
                  "(scripts/ensure-system.sh) — the alert rules must be checked by it")
    return path


def test_promtool_accepts_rules_and_config():
    rules = subprocess.run([_promtool(), "check", "rules", str(ALERTS)], check=False, capture_output=True,
                           text=True)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = subprocess.run([_promtool(), "check", "config", str(PROM_CONFIG)],
                            check=False, capture_output=True, text=True)
    assert config.returncode == 0, config.stdout + config.stderr


@pytest.fixture
def exported_names(db) -> set[str]:
    """Every sample name /metrics can expose: recorded metric objects and collector gauges."""
    from prometheus_client import Counter, Histogram

    from medforge.ops import metrics
    from status.collectors import PlatformStateCollector

    names = {"up"}
    for obj in vars(metrics).values():
        if isinstance(obj, Histogram):
            names |= {f"{obj._name}_{s}" for s in ("bucket", "count", "sum")}
        elif isinstance(obj, Counter):
            names |= {f"{obj._name}_total", obj._name}
    for family in PlatformStateCollector().collect():
        names.add(family.name)
        names |= {s.name for s in family.samples}
    # Families that appear only on some hosts (NVML) or with data (submissions).
    names |= {"medforge_gpu_utilization_percent", "medforge_gpu_memory_used_bytes",
              "medforge_gpu_temperature_celsius", "medforge_submissions",
              "medforge_workspace_used_ratio"}
    return names


def test_alert_rules_are_complete_and_use_only_exported_metrics(exported_names):
    doc = yaml.safe_load(ALERTS.read_text())
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in RUNBOOK.read_text().splitlines() if line.startswith("#")
    }
    rules = [r for g in doc["groups"] for r in g["rules"]]
    for rule in rules:
        assert rule["expr"] and rule["for"] is not None, rule["alert"]
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        anchor = rule["annotations"]["runbook"].split("#", 1)[1]
        assert anchor in anchors, (rule["alert"], anchor)
        for metric in re.findall(r"\b(medforge_[a-z0-9_]+|up)\b", rule["expr"]):
            assert metric in exported_names, (rule["alert"], metric)
    exprs = {r["alert"]: r["expr"] for r in rules}
    joined = "\n".join(exprs.values())
    for needle in ('up{job="medforge-api"} == 0', 'medforge_heartbeat_age_seconds{name="reconcile"}',
                   'state="starting"', 'state="stopping"', "medforge_session_starts_failed_total",
                   "medforge_scoring_failures_total", 'medforge_gpus{state="free"} == 0',
                   "> 0.70", "> 0.85", "medforge_disk_used_ratio", "medforge_workspace_used_ratio"):
        assert needle in joined, needle


def test_grafana_dashboard_queries_exported_metrics(exported_names):
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 12
    for expr in exprs:
        for metric in re.findall(r"\bmedforge_[a-z0-9_]+\b", expr):
            assert metric in exported_names, metric
    assert len({p["id"] for p in dash["panels"]}) == len(dash["panels"])


# --- host scripts --------------------------------------------------------------------------


def test_every_ops_script_parses():
    scripts = sorted((REPO / "ops").glob("*.sh"))
    assert {s.name for s in scripts} >= {"bootstrap.sh", "firewall.sh", "backup-db.sh",
                                         "restore-db.sh", "reconcile.sh", "cleanup.sh",
                                         "snapshots.sh", "validate.sh"}
    for script in scripts:
        done = subprocess.run(["bash", "-n", str(script)], check=False, capture_output=True,
                              text=True)
        assert done.returncode == 0, (script.name, done.stderr)
        if script.name != "lib.sh":
            assert script.stat().st_mode & 0o111, f"{script.name} is not executable"


def test_firewall_lets_only_the_edge_and_the_worker_probe_reach_the_ide_port(compose, tmp_path):
    out = subprocess.run(["bash", str(REPO / "ops" / "firewall.sh"), "--dry-run"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    svc = compose["services"]
    for net_key, bridge in (("sessions-external", "mf-ext0"), ("sessions-internal", "mf-int0")):
        edge = interpolate(svc["caddy"]["networks"][net_key]["ipv4_address"])
        worker = interpolate(svc["worker"]["networks"][net_key]["ipv4_address"])
        subnet = interpolate(compose["networks"][net_key]["ipam"]["config"][0]["subnet"])
        assert compose["networks"][net_key]["driver_opts"][
            "com.docker.network.bridge.name"] == bridge
        rules = [line for line in out if f"-i {bridge} -o {bridge}" in line]
        allow = [r for r in rules if "--dport 8080 -j ACCEPT" in r]
        assert {re.search(r"-s (\S+)", r).group(1) for r in allow} == {edge, worker}
        drop_all = next(i for i, r in enumerate(rules) if r.endswith(f"-o {bridge} -j DROP"))
        assert all(rules.index(r) < drop_all for r in allow)
        assert any(f"-d {subnet} -p tcp --dport 8080 -j DROP" in line for line in out)
        assert any(f"-I INPUT 1 -i {bridge}" in line for line in out)
    assert any("-I DOCKER-USER 1 -j MEDFORGE-SESSIONS" in line for line in out)


def test_bootstrap_dry_run_changes_nothing(tmp_path):
    done = subprocess.run(
        ["bash", str(REPO / "ops" / "bootstrap.sh"), "--dry-run", "--no-nvidia",
         "--data-dir", str(tmp_path / "srv"), "--pool", "nosuchpool"],
        check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "+ zfs create -p -o mountpoint=" in done.stdout
    assert not (tmp_path / "srv").exists()
