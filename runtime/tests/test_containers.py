"""DockerRuntime without a daemon: what it would send, and how it reads Docker's payloads.

The GPU device request cannot be sent on this machine: it has no NVIDIA GPU and no NVIDIA
container toolkit, and Docker refuses an `nvidia` device request without them. So the
`gpu_mode="nvidia"` tests assert on the create arguments DockerRuntime builds and on the JSON
host config the Docker SDK makes of them, which is what the daemon would receive.
"""

from __future__ import annotations

import docker.types
import pytest

from runtime.containers import (
    ContainerRuntime,
    DockerRuntime,
    RuntimeUnavailable,
    SessionContainerSpec,
    _parse_docker_time,
)


def _spec(**overrides) -> SessionContainerSpec:
    values = dict(
        session_id="3f1c0c9e-1d7a-4a38-9d0e-5f0a8f9d1b2c",
        slug="k7d2qzxa",
        user_id=42,
        exposure="external",
        image="registry.example.org/medforge/pack@sha256:" + "a" * 64,
        gpu_index=2,
        gpu_uuid="GPU-5c3bd7a0-2f1e-4c7e-9d3a-1b2c3d4e5f60",
        gpu_id=17,
        workspace_host_path="/srv/ws/42/3f1c",
        training_data_path="/srv/training/titanic",
    )
    values.update(overrides)
    return SessionContainerSpec(**values)


def test_docker_runtime_is_a_container_runtime() -> None:
    assert isinstance(DockerRuntime(), ContainerRuntime)


def test_create_args_follow_the_container_contract() -> None:
    runtime = DockerRuntime(cpu_limit=2.5, memory_limit="8g", pids_limit=512, shm_size="1g")
    args = runtime.container_create_args(_spec())
    assert args["name"] == "mf-session-k7d2qzxa"
    assert args["image"].endswith("@sha256:" + "a" * 64)
    assert args["user"] == "1000:1000"
    assert args["labels"] == {
        "medforge.session_id": "3f1c0c9e-1d7a-4a38-9d0e-5f0a8f9d1b2c",
        "medforge.slug": "k7d2qzxa",
        "medforge.user_id": "42",
        "medforge.exposure": "external",
        "medforge.managed": "true",
        "medforge.gpu_id": "17",
    }
    assert args["environment"] == {
        "NVIDIA_VISIBLE_DEVICES": "GPU-5c3bd7a0-2f1e-4c7e-9d3a-1b2c3d4e5f60",
        "CUDA_VISIBLE_DEVICES": "0",
        "MEDFORGE_SESSION_ID": "3f1c0c9e-1d7a-4a38-9d0e-5f0a8f9d1b2c",
        "MEDFORGE_USER_ID": "42",
        "MEDFORGE_EXPOSURE": "external",
        "MEDFORGE_GPU_ID": "17",
    }
    assert args["network"] == "medforge-external-sessions"
    hc = args["host_config"]
    assert [(m["Target"], m["Source"], m["ReadOnly"]) for m in hc["mounts"]] == [
        ("/workspace", "/srv/ws/42/3f1c", False),
        ("/data", "/srv/training/titanic", True),
    ]
    assert hc["cap_drop"] == ["ALL"] and hc["cap_add"] is None
    assert hc["security_opt"] == ["no-new-privileges"]
    assert hc["init"] is True and hc["restart_policy"] == {"Name": "no"}
    limits = (hc["nano_cpus"], hc["mem_limit"], hc["pids_limit"], hc["shm_size"])
    assert limits == (2_500_000_000, "8g", 512, "1g")
    # gpu_mode="none" (the default): no device request, but the env still names the GPU.
    assert "device_requests" not in hc
    assert hc["port_bindings"] == {8080: ("127.0.0.1",)}
    assert args["ports"] == [8080]


def test_nvidia_mode_requests_exactly_the_sessions_gpu() -> None:
    runtime = DockerRuntime(gpu_mode="nvidia")
    hc = runtime.container_create_args(_spec())["host_config"]
    assert hc["device_requests"] == [
        docker.types.DeviceRequest(
            driver="nvidia", device_ids=["GPU-5c3bd7a0-2f1e-4c7e-9d3a-1b2c3d4e5f60"], capabilities=[["gpu"]]
        )
    ]
    # What the daemon would receive (HostConfig JSON, API 1.41).
    wire = docker.types.HostConfig(version="1.41", **hc)
    assert wire["DeviceRequests"] == [
        {
            "Driver": "nvidia",
            "Count": 0,
            "DeviceIDs": ["GPU-5c3bd7a0-2f1e-4c7e-9d3a-1b2c3d4e5f60"],
            "Capabilities": [["gpu"]],
            "Options": {},
        }
    ]
    assert wire["CapDrop"] == ["ALL"] and wire["SecurityOpt"] == ["no-new-privileges"]
    assert wire["Mounts"][0]["Target"] == "/workspace"
    assert not any("docker.sock" in str(m) for m in wire["Mounts"])


def test_nvidia_mode_falls_back_to_the_gpu_index() -> None:
    runtime = DockerRuntime(gpu_mode="nvidia")
    args = runtime.container_create_args(_spec(gpu_uuid=None))
    assert args["host_config"]["device_requests"][0]["DeviceIDs"] == ["2"]
    assert args["environment"]["NVIDIA_VISIBLE_DEVICES"] == "2"
    with pytest.raises(ValueError, match="GPU uuid or index"):
        runtime.container_create_args(_spec(gpu_uuid=None, gpu_index=None))


def test_internal_sessions_use_the_internal_network_and_publish_nothing() -> None:
    args = DockerRuntime().container_create_args(_spec(exposure="internal"))
    assert args["network"] == "medforge-internal-sessions"
    assert args["host_config"]["network_mode"] == "medforge-internal-sessions"
    assert "port_bindings" not in args["host_config"]
    assert args["environment"]["MEDFORGE_EXPOSURE"] == "internal"


def test_network_publish_mode_publishes_nothing() -> None:
    args = DockerRuntime(publish_mode="network").container_create_args(_spec())
    assert "port_bindings" not in args["host_config"] and args["ports"] == []


def test_cap_add_is_configurable_and_extra_env_cannot_override_the_platform() -> None:
    runtime = DockerRuntime(cap_add=["chown", "SETUID"])
    args = runtime.container_create_args(
        _spec(extra_env={"MEDFORGE_USER_ID": "1", "NVIDIA_VISIBLE_DEVICES": "all", "TZ": "UTC"},
              training_data_path=None)
    )
    assert args["host_config"]["cap_add"] == ["CHOWN", "SETUID"]
    assert args["environment"]["MEDFORGE_USER_ID"] == "42"
    assert args["environment"]["NVIDIA_VISIBLE_DEVICES"] == "GPU-5c3bd7a0-2f1e-4c7e-9d3a-1b2c3d4e5f60"
    assert args["environment"]["TZ"] == "UTC"
    assert [m["Target"] for m in args["host_config"]["mounts"]] == ["/workspace"]


@pytest.mark.parametrize(
    "overrides",
    [{"exposure": "public"}, {"slug": "../etc"}, {"slug": "UPPER"}, {"slug": ""}, {"image": ""},
     {"extra_env": {"A=B": "x"}}],
)
def test_invalid_specs_are_refused(overrides) -> None:
    with pytest.raises(ValueError):
        DockerRuntime().container_create_args(_spec(**overrides))


def test_constructor_validates_modes() -> None:
    with pytest.raises(ValueError):
        DockerRuntime(gpu_mode="amd")
    with pytest.raises(ValueError):
        DockerRuntime(publish_mode="host")
    with pytest.raises(ValueError):
        DockerRuntime(external_network="x", internal_network="x")


def test_list_payload_decoding() -> None:
    runtime = DockerRuntime()
    running = runtime._info_from_list(
        {
            "Id": "abc",
            "Names": ["/mf-session-k7d2qzxa"],
            "State": "running",
            "Status": "Up 3 minutes",
            "Labels": {
                "medforge.session_id": "s1", "medforge.exposure": "external", "medforge.managed": "true"
            },
            "Ports": [
                {"IP": "::1", "PrivatePort": 8080, "PublicPort": 40001, "Type": "tcp"},
                {"IP": "127.0.0.1", "PrivatePort": 8080, "PublicPort": 40000, "Type": "tcp"},
            ],
            "NetworkSettings": {"Networks": {"medforge-external-sessions": {"IPAddress": "172.20.0.5"}}},
        }
    )
    assert (running.name, running.status, running.upstream, running.exit_code) == (
        "mf-session-k7d2qzxa", "running", "127.0.0.1:40000", None)
    assert running.session_id == "s1" and running.running

    exited = runtime._info_from_list(
        {"Id": "def", "Names": ["/mf-session-b"], "State": "exited", "Status": "Exited (137) 5 seconds ago",
         "Labels": {"medforge.exposure": "external"}, "Ports": [], "NetworkSettings": {"Networks": {}}}
    )
    assert (exited.status, exited.exit_code, exited.upstream) == ("exited", 137, None)

    internal = runtime._info_from_list(
        {"Id": "ghi", "Names": ["/mf-session-c"], "State": "running", "Status": "Up 1 second",
         "Labels": {"medforge.exposure": "internal"}, "Ports": [],
         "NetworkSettings": {"Networks": {"medforge-internal-sessions": {"IPAddress": "172.21.0.9"}}}}
    )
    assert internal.upstream == "172.21.0.9:8080"

    production = DockerRuntime(publish_mode="network")._info_from_list(
        {"Id": "jkl", "Names": ["/mf-session-d"], "State": "running", "Status": "Up",
         "Labels": {"medforge.exposure": "external"}, "Ports": [{"PrivatePort": 8080, "Type": "tcp"}],
         "NetworkSettings": {"Networks": {"bridge": {"IPAddress": "172.17.0.2"},
                                          "medforge-external-sessions": {"IPAddress": "172.20.0.7"}}}}
    )
    assert production.upstream == "172.20.0.7:8080"


def test_docker_time_parsing() -> None:
    parsed = _parse_docker_time("2024-05-01T12:34:56.123456789Z")
    assert parsed is not None and parsed.isoformat() == "2024-05-01T12:34:56.123456+00:00"
    assert _parse_docker_time("0001-01-01T00:00:00Z") is None
    assert _parse_docker_time("") is None
    assert _parse_docker_time("2024-05-01T12:34:56+02:00").hour == 10


def test_unreachable_engine_is_runtime_unavailable(tmp_path) -> None:
    runtime = DockerRuntime(base_url=f"unix://{tmp_path}/no-docker.sock", timeout_s=2)
    assert runtime.ping() is False
    with pytest.raises(RuntimeUnavailable, match=r"no-docker\.sock"):
        runtime.list_managed()
    with pytest.raises(RuntimeUnavailable):
        runtime.stop_and_remove("mf-session-x")
