"""Session containers on a Docker engine: the container contract of SPEC §4 in one place.

`DockerRuntime` is the only code in MedForge that speaks the Docker API. It builds a session
container (name, labels, env, one GPU, one workspace mount, least privilege, limits, session
network), waits until its IDE answers HTTP, stops and removes it, and lists the platform's
containers with a single API call for reconcile. Docker SDK errors are translated into the
exceptions below so callers never see `docker.errors` or `requests` exceptions.
"""

from __future__ import annotations

import http.client
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import docker
import docker.errors
import requests
from docker.types import DeviceRequest, LogConfig, Mount

NAME_PREFIX = "mf-session-"
IDE_PORT = 8080

LABEL_SESSION_ID = "medforge.session_id"
LABEL_SLUG = "medforge.slug"
LABEL_USER_ID = "medforge.user_id"
LABEL_EXPOSURE = "medforge.exposure"
LABEL_GPU_ID = "medforge.gpu_id"
LABEL_MANAGED = "medforge.managed"
MANAGED_FILTER = f"{LABEL_MANAGED}=true"

# The same two words as medforge.core.exposure; runtime/ stays importable without Django.
EXPOSURES = ("external", "internal")
GPU_MODES = ("none", "nvidia")
PUBLISH_MODES = ("loopback", "network")

DEFAULT_EXTERNAL_NETWORK = "medforge-external-sessions"
DEFAULT_INTERNAL_NETWORK = "medforge-internal-sessions"

# A slug becomes part of a container name and a DNS label (s-<slug>.<surface>.<base>), so it
# must be a short lowercase token; the platform's slugs are 8 chars of base32.
_SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
_EXITED_RE = re.compile(r"^Exited \((-?\d+)\)")
_DOCKER_ZERO_TIME = "0001-01-01T00:00:00Z"


# --------------------------------------------------------------------------- errors


class ContainerRuntimeError(Exception):
    """Base class of every error this module raises."""


class RuntimeUnavailable(ContainerRuntimeError):
    """The Docker engine did not answer (not running, socket missing, timed out)."""


class ContainerStartError(ContainerRuntimeError):
    """A session container could not be created, started, or did not become ready."""


class ImageNotFound(ContainerStartError):
    """The session image is not present on the Docker host."""


class ContainerConflict(ContainerStartError):
    """A container with the session's name exists but belongs to another session."""


class NetworkMisconfigured(ContainerRuntimeError):
    """A session network exists but does not have the isolation the contract requires."""


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class SessionContainerSpec:
    """Everything the runtime needs to start one session's container."""

    session_id: str
    slug: str
    user_id: str | int
    exposure: str
    image: str
    gpu_index: int | None = None
    gpu_uuid: str | None = None
    gpu_id: int | str | None = None
    workspace_host_path: str | None = None
    training_data_path: str | None = None
    extra_env: Mapping[str, str] = field(default_factory=dict)

    @property
    def container_name(self) -> str:
        return container_name(self.slug)


@dataclass(frozen=True)
class ContainerInfo:
    """What the platform needs to know about one session container.

    `upstream` is the `host:port` of the IDE, or None when the container has no reachable
    address (not running, or not yet on its network). `exit_code` is set only for exited or
    dead containers. `started_at` is None when Docker's list payload was the source (it does
    not carry the start time) or the container never started.
    """

    id: str
    name: str
    status: str
    labels: dict[str, str]
    upstream: str | None
    exit_code: int | None
    started_at: datetime | None

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def session_id(self) -> str | None:
        return self.labels.get(LABEL_SESSION_ID)

    @property
    def slug(self) -> str | None:
        return self.labels.get(LABEL_SLUG)

    @property
    def user_id(self) -> str | None:
        return self.labels.get(LABEL_USER_ID)

    @property
    def exposure(self) -> str | None:
        return self.labels.get(LABEL_EXPOSURE)


def container_name(slug: str) -> str:
    """The Docker name of a session's container: `mf-session-<slug>`."""
    return f"{NAME_PREFIX}{slug}"


# --------------------------------------------------------------------------- protocol


@runtime_checkable
class ContainerRuntime(Protocol):
    """What the session lifecycle needs from a container engine."""

    @property
    def api_calls(self) -> int: ...

    def ping(self) -> bool: ...

    def ensure_networks(self) -> None: ...

    def run(self, spec: SessionContainerSpec) -> ContainerInfo: ...

    def wait_ready(
        self, container_id: str, upstream: str | None, timeout_s: float
    ) -> ContainerInfo: ...

    def inspect(self, container_id_or_name: str) -> ContainerInfo | None: ...

    def stop_and_remove(self, container_id_or_name: str, timeout_s: float = 10) -> bool: ...

    def remove_by_name(self, name: str) -> bool: ...

    def list_managed(self) -> list[ContainerInfo]: ...


# --------------------------------------------------------------------------- Docker


class _CountingAPIClient(docker.APIClient):
    """A low-level Docker client that reports every HTTP request it sends.

    Counting at `send` (rather than per SDK method) makes `DockerRuntime.api_calls` the true
    number of round trips to the daemon, including the API version negotiation.
    """

    def __init__(self, *args: Any, on_request: Any, **kwargs: Any) -> None:
        self._on_request = on_request
        super().__init__(*args, **kwargs)

    def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self._on_request()
        return super().send(request, **kwargs)


class DockerRuntime:
    """Runs session containers on one Docker engine, following SPEC §4's container contract.

    One low-level SDK client per instance, created on first use (so building a runtime never
    blocks on a daemon that is down) and guarded by a lock; every request has `timeout_s`.

    gpu_mode:     "nvidia" sends a DeviceRequest for exactly the session's GPU; "none" (hosts
                  without the NVIDIA container toolkit, where Docker refuses such a request)
                  sends none but still sets the GPU env so the contract is visible.
    publish_mode: "loopback" publishes the IDE port on 127.0.0.1 with a random host port (local
                  run, tests); "network" publishes nothing and the upstream is the container's
                  address on its session network (production: the edge joins those networks).
                  Docker never publishes ports of a container on an `internal` network, so an
                  internal session's upstream is its network address in both modes.
    """

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_version: str = "auto",
        timeout_s: float = 30.0,
        gpu_mode: str = "none",
        publish_mode: str = "loopback",
        cpu_limit: float | None = 4.0,
        memory_limit: str | int | None = "16g",
        pids_limit: int | None = 4096,
        shm_size: str | int | None = "2g",
        cap_add: Sequence[str] = (),
        external_network: str = DEFAULT_EXTERNAL_NETWORK,
        internal_network: str = DEFAULT_INTERNAL_NETWORK,
        user: str = "1000:1000",
        ide_port: int = IDE_PORT,
        loopback_host: str = "127.0.0.1",
        log_max_size: str | None = "10m",
        log_max_files: int = 3,
        ready_poll_interval_s: float = 0.1,
    ) -> None:
        if gpu_mode not in GPU_MODES:
            raise ValueError(f"gpu_mode must be one of {GPU_MODES}, not {gpu_mode!r}")
        if publish_mode not in PUBLISH_MODES:
            raise ValueError(f"publish_mode must be one of {PUBLISH_MODES}, not {publish_mode!r}")
        if external_network == internal_network:
            raise ValueError("the external and internal session networks must differ")
        self.base_url = base_url
        self.api_version = api_version
        self.timeout_s = timeout_s
        self.gpu_mode = gpu_mode
        self.publish_mode = publish_mode
        self.cpu_limit = cpu_limit
        self.memory_limit = memory_limit
        self.pids_limit = pids_limit
        self.shm_size = shm_size
        self.cap_add = [c.upper() for c in cap_add]
        self.external_network = external_network
        self.internal_network = internal_network
        self.user = user
        self.ide_port = ide_port
        self.loopback_host = loopback_host
        self.log_max_size = log_max_size
        self.log_max_files = log_max_files
        self.ready_poll_interval_s = ready_poll_interval_s

        self._client: _CountingAPIClient | None = None
        self._client_lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._api_calls = 0
        self._networks_ready = False

    # -- plumbing -----------------------------------------------------------------------

    @property
    def api_calls(self) -> int:
        """HTTP requests this instance has sent to the Docker daemon so far."""
        return self._api_calls

    def _count(self) -> None:
        with self._count_lock:
            self._api_calls += 1

    def _where(self) -> str:
        return self.base_url or "the default Docker host (DOCKER_HOST or /var/run/docker.sock)"

    @property
    def _api(self) -> docker.APIClient:
        with self._client_lock:
            if self._client is None:
                kwargs: dict[str, Any]
                kwargs = {"base_url": self.base_url} if self.base_url else docker.utils.kwargs_from_env()
                try:
                    self._client = _CountingAPIClient(
                        on_request=self._count,
                        version=self.api_version,
                        timeout=self.timeout_s,
                        **kwargs,
                    )
                except docker.errors.DockerException as exc:
                    raise RuntimeUnavailable(
                        f"cannot reach the Docker engine at {self._where()}: {exc}"
                    ) from exc
            return self._client

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Translate transport-level failures; API errors are handled at each call site."""
        try:
            yield
        except ContainerRuntimeError:
            raise
        except docker.errors.APIError as exc:
            raise ContainerRuntimeError(f"Docker refused to {action}: {_explain(exc)}") from exc
        except requests.exceptions.RequestException as exc:
            raise RuntimeUnavailable(
                f"the Docker engine at {self._where()} did not answer while trying to "
                f"{action}: {exc}"
            ) from exc
        except docker.errors.DockerException as exc:
            raise ContainerRuntimeError(f"could not {action}: {exc}") from exc

    def close(self) -> None:
        """Close the HTTP connection pool (a new one opens on next use)."""
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # -- health -------------------------------------------------------------------------

    def ping(self) -> bool:
        """True when the Docker engine answers `/_ping`."""
        try:
            with self._errors("ping"):
                return bool(self._api.ping())
        except ContainerRuntimeError:
            return False

    # -- networks -----------------------------------------------------------------------

    def network_for(self, exposure: str) -> str:
        if exposure == "external":
            return self.external_network
        if exposure == "internal":
            return self.internal_network
        raise ValueError(f"exposure must be one of {EXPOSURES}, not {exposure!r}")

    def ensure_networks(self) -> None:
        """Create both session networks if missing; idempotent and safe to race.

        The internal network is created with `internal=True` (no route out). An existing
        network of that name that is not internal is refused rather than used, because it
        would silently give internal sessions egress.
        """
        wanted = {self.external_network: False, self.internal_network: True}
        with self._errors("set up the session networks"):
            api = self._api
            for name, internal in wanted.items():
                existing = self._find_network(api, name)
                if existing is None:
                    existing = self._create_network(api, name, internal)
                if bool(existing.get("Internal")) != internal:
                    raise NetworkMisconfigured(
                        f"Docker network {name} exists with internal={bool(existing.get('Internal'))}"
                        f" but the session contract needs internal={internal}; remove or rename it"
                    )
        self._networks_ready = True

    def _create_network(self, api: docker.APIClient, name: str, internal: bool) -> dict[str, Any]:
        try:
            created = api.create_network(
                name,
                driver="bridge",
                internal=internal,
                check_duplicate=True,
                labels={LABEL_MANAGED: "true"},
            )
            own_id = created.get("Id")
        except docker.errors.APIError as exc:
            # Another worker created it between our list and create: fine.
            if exc.status_code != 409:
                raise
            own_id = None
        winner = self._find_network(api, name)
        if winner is None:
            raise ContainerRuntimeError(f"network {name} vanished right after it was created")
        if own_id and winner.get("Id") != own_id:
            # The daemon's duplicate check is best effort: two workers racing can both create
            # the name. The oldest network wins everywhere; the loser removes its own copy
            # before anything could attach to it.
            with suppress(docker.errors.APIError):
                api.remove_network(own_id)
        return winner

    @staticmethod
    def _find_network(api: docker.APIClient, name: str) -> dict[str, Any] | None:
        # The daemon's name filter matches substrings, so compare names exactly. With
        # duplicates from a creation race, the oldest (then lowest id) is the one to use.
        matches = [n for n in api.networks(names=[name]) if n.get("Name") == name]
        matches.sort(key=lambda n: (_docker_time_ns(n.get("Created")), n.get("Id", "")))
        return matches[0] if matches else None

    # -- building a container -----------------------------------------------------------

    def container_create_args(self, spec: SessionContainerSpec) -> dict[str, Any]:
        """The arguments `run()` hands to the Docker API for `spec`; pure, no daemon call.

        Returns `image`, `name`, `hostname`, `user`, `labels`, `environment`, `ports`,
        `network` and `host_config` (keyword arguments of `APIClient.create_host_config`).
        Exposed so tests can check exactly what would be sent, e.g. the GPU device request on
        a host that has no NVIDIA toolkit.
        """
        _validate_spec(spec)
        network = self.network_for(spec.exposure)
        gpu_ref = spec.gpu_uuid or (str(spec.gpu_index) if spec.gpu_index is not None else None)
        if self.gpu_mode == "nvidia" and gpu_ref is None:
            raise ValueError(f"session {spec.session_id}: gpu_mode=nvidia needs a GPU uuid or index")

        labels = {
            LABEL_SESSION_ID: str(spec.session_id),
            LABEL_SLUG: spec.slug,
            LABEL_USER_ID: str(spec.user_id),
            LABEL_EXPOSURE: spec.exposure,
            LABEL_MANAGED: "true",
        }
        if spec.gpu_id is not None:
            labels[LABEL_GPU_ID] = str(spec.gpu_id)

        # Extra env first so the platform's own variables always win.
        environment = {str(k): str(v) for k, v in spec.extra_env.items()}
        environment.update(
            {
                # "void" is the NVIDIA runtime's word for "no GPU" when none was assigned.
                "NVIDIA_VISIBLE_DEVICES": gpu_ref if gpu_ref is not None else "void",
                # Inside the container the one visible GPU is always device 0.
                "CUDA_VISIBLE_DEVICES": "0",
                "MEDFORGE_SESSION_ID": str(spec.session_id),
                "MEDFORGE_USER_ID": str(spec.user_id),
                "MEDFORGE_EXPOSURE": spec.exposure,
                "MEDFORGE_GPU_ID": "" if spec.gpu_id is None else str(spec.gpu_id),
            }
        )

        mounts = []
        if spec.workspace_host_path:
            mounts.append(
                Mount(target="/workspace", source=spec.workspace_host_path, type="bind", read_only=False)
            )
        if spec.training_data_path:
            mounts.append(
                Mount(target="/data", source=spec.training_data_path, type="bind", read_only=True)
            )

        host_config: dict[str, Any] = {
            "mounts": mounts,
            "network_mode": network,
            "cap_drop": ["ALL"],
            "cap_add": list(self.cap_add) or None,
            "security_opt": ["no-new-privileges"],
            "init": True,
            "restart_policy": {"Name": "no"},
        }
        if self.pids_limit is not None:
            host_config["pids_limit"] = int(self.pids_limit)
        if self.memory_limit is not None:
            host_config["mem_limit"] = self.memory_limit
        if self.cpu_limit is not None:
            host_config["nano_cpus"] = round(float(self.cpu_limit) * 1e9)
        if self.shm_size is not None:
            host_config["shm_size"] = self.shm_size
        if self.log_max_size:
            # A user's process can print without end; cap what the daemon keeps on disk.
            host_config["log_config"] = LogConfig(
                type=LogConfig.types.JSON,
                config={"max-size": self.log_max_size, "max-file": str(self.log_max_files)},
            )
        if self.gpu_mode == "nvidia":
            host_config["device_requests"] = [
                DeviceRequest(driver="nvidia", device_ids=[gpu_ref], capabilities=[["gpu"]])
            ]
        ports: list[int] = []
        if self.publish_mode == "loopback" and spec.exposure == "external":
            ports = [self.ide_port]
            # An empty host port asks Docker for a free random one, bound on loopback only.
            host_config["port_bindings"] = {self.ide_port: (self.loopback_host,)}

        return {
            "image": spec.image,
            "name": spec.container_name,
            "hostname": f"s-{spec.slug}",
            "user": self.user,
            "labels": labels,
            "environment": environment,
            "ports": ports,
            "network": network,
            "host_config": host_config,
        }

    # -- lifecycle ----------------------------------------------------------------------

    def run(self, spec: SessionContainerSpec) -> ContainerInfo:
        """Create and start the session's container; returns it with its upstream.

        A container already named `mf-session-<slug>` is reused when it carries the same
        session id (a retried start task), and refused otherwise. A container that was created
        but could not start is removed before the error is raised.
        """
        args = self.container_create_args(spec)
        name = args["name"]
        if not self._networks_ready:
            self.ensure_networks()
        with self._errors(f"start session container {name}"):
            api = self._api
            try:
                created = api.create_container(
                    image=args["image"],
                    name=name,
                    hostname=args["hostname"],
                    user=args["user"],
                    labels=args["labels"],
                    environment=args["environment"],
                    ports=args["ports"] or None,
                    detach=True,
                    host_config=api.create_host_config(**args["host_config"]),
                    networking_config=api.create_networking_config(
                        {args["network"]: api.create_endpoint_config()}
                    ),
                    # Never copy the API host's proxy settings into a user's container.
                    use_config_proxy=False,
                )
            except docker.errors.ImageNotFound as exc:
                raise ImageNotFound(
                    f"image {spec.image} is not on the Docker host; build or pull the pack "
                    f"image before starting sessions with it ({_explain(exc)})"
                ) from exc
            except docker.errors.APIError as exc:
                if exc.status_code == 409:
                    return self._reuse(spec, name)
                raise ContainerStartError(
                    f"Docker refused to create {name}: {_explain(exc)}"
                ) from exc
            container_id = created["Id"]
            try:
                api.start(container_id)
                # One reload: the random host port and network address exist only now.
                data = api.inspect_container(container_id)
            except (docker.errors.APIError, requests.exceptions.RequestException) as exc:
                self._remove_quietly(container_id)
                detail = _explain(exc) if isinstance(exc, docker.errors.APIError) else str(exc)
                raise ContainerStartError(f"Docker could not start {name}: {detail}") from exc
        return self._info_from_inspect(data)

    def _reuse(self, spec: SessionContainerSpec, name: str) -> ContainerInfo:
        api = self._api
        try:
            data = api.inspect_container(name)
        except docker.errors.NotFound as exc:
            raise ContainerStartError(
                f"{name} was reported as existing but is gone; retry the start"
            ) from exc
        labels = (data.get("Config") or {}).get("Labels") or {}
        owner = labels.get(LABEL_SESSION_ID)
        if owner != str(spec.session_id):
            raise ContainerConflict(
                f"a container named {name} already exists for session {owner or '(unlabelled)'}, "
                f"not {spec.session_id}; refusing to reuse it"
            )
        state = (data.get("State") or {}).get("Status")
        if state in ("created", "exited"):
            try:
                api.start(data["Id"])
            except docker.errors.APIError as exc:
                raise ContainerStartError(f"Docker could not start {name}: {_explain(exc)}") from exc
            data = api.inspect_container(data["Id"])
        return self._info_from_inspect(data)

    def wait_ready(
        self, container_id: str, upstream: str | None, timeout_s: float
    ) -> ContainerInfo:
        """Wait until the container runs and `GET http://<upstream>/` gets any HTTP answer.

        `upstream` None means "use the address Docker reports". Raises ContainerStartError
        with the container's last log lines when it exits, vanishes, or the time runs out.
        """
        deadline = time.monotonic() + timeout_s
        last_probe_error = "no probe yet"
        with self._errors(f"wait for container {container_id}"):
            while True:
                try:
                    data = self._api.inspect_container(container_id)
                except docker.errors.NotFound as exc:
                    raise ContainerStartError(
                        f"container {container_id} disappeared while starting"
                    ) from exc
                info = self._info_from_inspect(data)
                if info.status in ("exited", "dead"):
                    raise ContainerStartError(
                        f"container {info.name} exited with code {info.exit_code} before its IDE "
                        f"answered on port {self.ide_port}; last log lines:\n"
                        f"{self.logs_tail(container_id)}"
                    )
                target = upstream or info.upstream
                if info.running and target:
                    remaining = deadline - time.monotonic()
                    ok, last_probe_error = _http_answers(target, max(0.05, min(1.0, remaining)))
                    if ok:
                        return info if info.upstream else replace(info, upstream=target)
                if time.monotonic() >= deadline:
                    raise ContainerStartError(
                        f"container {info.name} (status {info.status}) did not answer HTTP on "
                        f"{target or 'an unknown address'} within {timeout_s:g}s "
                        f"(last probe: {last_probe_error}); last log lines:\n"
                        f"{self.logs_tail(container_id)}"
                    )
                time.sleep(min(self.ready_poll_interval_s, max(0.0, deadline - time.monotonic())))

    def logs_tail(self, container_id_or_name: str, lines: int = 20) -> str:
        """The last `lines` log lines (stdout and stderr), or a note when unavailable."""
        try:
            raw = self._api.logs(container_id_or_name, stdout=True, stderr=True, tail=lines)
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            return f"(logs unavailable: {exc})"
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        return text.rstrip() or "(no output)"

    def inspect(self, container_id_or_name: str) -> ContainerInfo | None:
        """One container's current state, or None when it does not exist."""
        with self._errors(f"inspect {container_id_or_name}"):
            try:
                data = self._api.inspect_container(container_id_or_name)
            except docker.errors.NotFound:
                return None
        return self._info_from_inspect(data)

    def stop_and_remove(self, container_id_or_name: str, timeout_s: float = 10) -> bool:
        """Stop gracefully (SIGTERM, then SIGKILL after `timeout_s`) and remove.

        Returns False when the container was already gone, so callers can repeat it freely.
        """
        with self._errors(f"stop {container_id_or_name}"):
            api = self._api
            try:
                api.stop(container_id_or_name, timeout=int(timeout_s))
            except docker.errors.NotFound:
                return False
            return self._remove(container_id_or_name)

    def remove_by_name(self, name: str) -> bool:
        """Force-remove a container by name (no graceful stop); False when it did not exist."""
        with self._errors(f"remove {name}"):
            return self._remove(name)

    def _remove(self, ref: str) -> bool:
        try:
            # v=True: anonymous volumes an image declares die with the container.
            self._api.remove_container(ref, force=True, v=True)
        except docker.errors.NotFound:
            return False
        except docker.errors.APIError as exc:
            # Another worker is already removing it: the outcome we want.
            if exc.status_code == 409 and "in progress" in _explain(exc):
                return True
            raise
        return True

    def _remove_quietly(self, ref: str) -> None:
        with suppress(docker.errors.DockerException, requests.exceptions.RequestException):
            self._remove(ref)

    def list_managed(self) -> list[ContainerInfo]:
        """Every container labelled `medforge.managed=true`, running or not.

        Exactly one Docker API call: the list payload already carries state, labels, ports
        and network addresses, so no container is inspected one by one.
        """
        with self._errors("list session containers"):
            rows = self._api.containers(all=True, filters={"label": MANAGED_FILTER})
        return [self._info_from_list(row) for row in rows]

    def image_exists(self, image: str) -> bool:
        """True when `image` (a tag or digest reference, or an ID) is on the Docker host."""
        with self._errors(f"inspect image {image}"):
            try:
                self._api.inspect_image(image)
            except docker.errors.NotFound:
                return False
        return True

    # -- decoding Docker payloads -------------------------------------------------------

    def _info_from_inspect(self, data: Mapping[str, Any]) -> ContainerInfo:
        state = data.get("State") or {}
        status = str(state.get("Status") or "unknown")
        labels = dict((data.get("Config") or {}).get("Labels") or {})
        settings = data.get("NetworkSettings") or {}
        upstream = None
        if status == "running":
            published = None
            for binding in (settings.get("Ports") or {}).get(f"{self.ide_port}/tcp") or []:
                if binding.get("HostIp") == self.loopback_host and binding.get("HostPort"):
                    published = f"{self.loopback_host}:{binding['HostPort']}"
                    break
            upstream = published or self._network_upstream(settings.get("Networks") or {}, labels)
        return ContainerInfo(
            id=str(data.get("Id", "")),
            name=str(data.get("Name") or "").lstrip("/"),
            status=status,
            labels=labels,
            upstream=upstream,
            exit_code=(
                int(state["ExitCode"]) if status in ("exited", "dead") and "ExitCode" in state else None
            ),
            started_at=_parse_docker_time(state.get("StartedAt")),
        )

    def _info_from_list(self, row: Mapping[str, Any]) -> ContainerInfo:
        status = str(row.get("State") or "unknown")
        labels = dict(row.get("Labels") or {})
        upstream = None
        if status == "running":
            published = None
            for port in row.get("Ports") or []:
                if (
                    port.get("PrivatePort") == self.ide_port
                    and port.get("IP") == self.loopback_host
                    and port.get("PublicPort")
                ):
                    published = f"{self.loopback_host}:{port['PublicPort']}"
                    break
            networks = (row.get("NetworkSettings") or {}).get("Networks") or {}
            upstream = published or self._network_upstream(networks, labels)
        exit_code = None
        match = _EXITED_RE.match(str(row.get("Status") or ""))
        if status in ("exited", "dead") and match:
            exit_code = int(match.group(1))
        names = row.get("Names") or []
        return ContainerInfo(
            id=str(row.get("Id", "")),
            name=str(names[0]).lstrip("/") if names else "",
            status=status,
            labels=labels,
            upstream=upstream,
            exit_code=exit_code,
            started_at=None,
        )

    def _network_upstream(self, networks: Mapping[str, Any], labels: Mapping[str, str]) -> str | None:
        exposure = labels.get(LABEL_EXPOSURE)
        preferred = self.network_for(exposure) if exposure in EXPOSURES else None
        if preferred is None:
            return None
        address = (networks.get(preferred) or {}).get("IPAddress")
        return f"{address}:{self.ide_port}" if address else None


# --------------------------------------------------------------------------- helpers


def _validate_spec(spec: SessionContainerSpec) -> None:
    if spec.exposure not in EXPOSURES:
        raise ValueError(f"exposure must be one of {EXPOSURES}, not {spec.exposure!r}")
    if not _SLUG_RE.match(spec.slug or ""):
        raise ValueError(f"slug {spec.slug!r} is not a short lowercase token")
    if not spec.session_id:
        raise ValueError("session_id is required")
    if not spec.image:
        raise ValueError("image is required")
    for env_name in spec.extra_env:
        if not env_name or "=" in env_name:
            raise ValueError(f"invalid environment variable name {env_name!r}")


def _explain(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    if isinstance(explanation, bytes):
        explanation = explanation.decode("utf-8", "replace")
    return str(explanation or exc)


def _parse_docker_time(value: str | None) -> datetime | None:
    if not value or value.startswith("0001-01-01"):
        return None
    # Docker writes RFC 3339 with nanoseconds; Python keeps microseconds.
    match = re.match(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$", value)
    if not match:
        return None
    base, fraction, zone = match.groups()
    text = base + (f".{fraction[:6].ljust(6, '0')}" if fraction else "") + (
        "+00:00" if zone == "Z" else zone
    )
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        return None


def _docker_time_ns(value: str | None) -> int:
    """Nanoseconds since the epoch of an RFC 3339 time with up to 9 fraction digits (for
    ordering: Go trims trailing zeros, so these strings do not sort as text)."""
    parsed = _parse_docker_time(value)
    if parsed is None:
        return 0
    match = re.search(r"\.(\d+)", value or "")
    nanos = int((match.group(1) + "000000000")[:9]) if match else 0
    return int(parsed.replace(microsecond=0).timestamp()) * 1_000_000_000 + nanos


def _http_answers(upstream: str, timeout_s: float) -> tuple[bool, str]:
    """True when `GET http://<upstream>/` returns any HTTP status line."""
    host, _, port = upstream.rpartition(":")
    try:
        conn = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=timeout_s)
    except ValueError as exc:
        return False, f"bad upstream {upstream!r}: {exc}"
    try:
        conn.request("GET", "/", headers={"User-Agent": "medforge-readiness"})
        response = conn.getresponse()
        return True, f"HTTP {response.status}"
    except (OSError, http.client.HTTPException) as exc:
        # Includes the loopback proxy accepting and then dropping the connection while the
        # IDE inside has not bound its port yet.
        return False, f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()

