"""cluster.yaml and cluster-local.yaml: Ray's own cluster-config validation accepts them, and their security and
setup choices hold.

Validation is what `ray up` runs before it talks to the cloud: `prepare_config` (merge with the AWS
defaults, per-type worker bounds, Docker checks) then `validate_config` (ray-schema.json plus cross-field
rules). Both work offline; the later AWS bootstrap step needs boto3 and credentials and is not run here.
Each check is also run on a broken copy of the config, so that a check that cannot fail is noticed.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
CLUSTER_YAML = REPO_ROOT / "cluster.yaml"
LOCAL_YAML = REPO_ROOT / "cluster-local.yaml"
SETUP_SCRIPT = REPO_ROOT / "cluster" / "setup.sh"
INSTALL = re.compile(r"\bpip install\b.*\s-e\s+~/mmray\b")
RUNS_SETUP = re.compile(r"\bbash ~/mmray/cluster/setup\.sh\b")


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text())


@pytest.fixture(scope="module")
def local() -> dict:
    return yaml.safe_load(LOCAL_YAML.read_text())


def ray_validate(config: dict) -> dict:
    """What `ray up` does to a config before any cloud call; returns the filled-out config."""
    from mmray.orchestration.ray_adapter import validate_cluster_config

    return validate_cluster_config(config)


def head_start_commands(config: dict) -> list[str]:
    return [c for c in config["head_start_ray_commands"] if "ray start" in c]


def worker_types(config: dict) -> dict[str, dict]:
    return {name: t for name, t in config["available_node_types"].items() if name != config["head_node_type"]}


def dashboard_problems(config: dict) -> list[str]:
    problems = []
    starts = head_start_commands(config)
    if not starts:
        problems.append("no `ray start` in head_start_ray_commands")
    for cmd in starts:
        hosts = re.findall(r"--dashboard-host(?:=|\s+)([^\s\"]+)", cmd)
        if hosts != ["127.0.0.1"]:
            problems.append(f"head start binds the dashboard to {hosts or 'the default'}: {cmd}")
    every_string = json.dumps(config)
    for host in re.findall(r"--dashboard-host(?:=|\s+)([^\s\"]+)", every_string):
        if host != "127.0.0.1":
            problems.append(f"--dashboard-host={host} somewhere in the config")
    return problems


def token_problems(config: dict) -> list[str]:
    problems = []
    workers = [c for c in config["worker_start_ray_commands"] if "ray start" in c]
    starts = head_start_commands(config) + workers
    for cmd in starts:
        if "RAY_AUTH_MODE=token" not in cmd:
            problems.append(f"ray start without RAY_AUTH_MODE=token: {cmd}")
    if config.get("file_mounts", {}).get("~/.ray/auth_token") != "~/.ray/auth_token":
        problems.append("the local token file ~/.ray/auth_token is not mounted at ~/.ray/auth_token")
    return problems


def gpu_problems(config: dict) -> list[str]:
    workers = worker_types(config)
    gpu = [n for n, t in workers.items() if t.get("resources", {}).get("GPU", 0) >= 1]
    cpu = [n for n, t in workers.items() if t.get("resources", {}).get("CPU", 0) >= 1 and n not in gpu]
    problems = [] if gpu else ["no worker type offers a GPU resource"]
    problems += [] if cpu else ["no CPU-only worker type"]
    for name, t in workers.items():
        if t.get("min_workers", 0) != 0 or not t.get("max_workers", 0) > 0:
            problems.append(f"{name}: expected min_workers 0 and max_workers > 0 (autoscaling)")
    return problems


def expanded(commands: list[str], script: str | None = None) -> list[str]:
    """The commands with each run of cluster/setup.sh replaced by the script's own lines."""
    script = SETUP_SCRIPT.read_text() if script is None else script
    return [line for c in commands for line in (script.splitlines() if RUNS_SETUP.search(c) else [c])]


def setup_problems(prepared: dict, script: str | None = None) -> list[str]:
    """Per node, the setup commands the launcher really runs (a type's own list replaces the merged one; the
    local provider has one node type, whose workers run worker_setup_commands)."""
    problems = []
    if prepared["file_mounts"].get("~/mmray") != ".":
        problems.append("the project is not synced to ~/mmray")
    runs = {"head": prepared["head_setup_commands"]}
    for name, t in worker_types(prepared).items():
        runs[name] = t.get("worker_setup_commands", prepared["worker_setup_commands"])
    if not worker_types(prepared):
        runs["workers"] = prepared["worker_setup_commands"]
    runs = {node: expanded(commands, script) for node, commands in runs.items()}
    for node, commands in runs.items():
        if not any(INSTALL.search(c) for c in commands):
            problems.append(f"{node}: setup does not `pip install -e ~/mmray`")
        if not any(re.search(r"pip install\b.*\btorch==2\.13\.0\b", c) for c in commands):
            problems.append(f"{node}: setup does not install torch==2.13.0 before the project")
    return problems


SECRET_PATTERNS = [
    re.compile(r"(?i)api[_-]?key\s*[:=]\s*['\"]?[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?i)\b(WANDB_API_KEY|AWS_SECRET_ACCESS_KEY|AWS_ACCESS_KEY_ID|AWS_SESSION_TOKEN"
               r"|RAY_AUTH_TOKEN)\s*[:=]\s*['\"]?[^\s'\"$]"),
    re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),  # an AWS access key id
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._\-]{16,}"),
    re.compile(r"\b[0-9a-fA-F]{32,}\b"),  # a hex token (a Ray token is 64 hex digits)
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
]


def secret_hits(text: str) -> list[str]:
    return [m.group(0) for pattern in SECRET_PATTERNS for m in pattern.finditer(text)]


# --- the real file ---------------------------------------------------------------------------------------

def test_ray_accepts_the_cluster_config(raw):
    prepared = ray_validate(raw)
    assert prepared["provider"]["type"] == "aws"
    assert prepared["head_node_type"] in prepared["available_node_types"]
    assert isinstance(raw["max_workers"], int) and raw["max_workers"] > 0
    assert raw["idle_timeout_minutes"] > 0


def test_dashboard_is_bound_to_localhost_only(raw):
    assert dashboard_problems(ray_validate(raw)) == []


def test_head_and_workers_share_a_token(raw):
    assert token_problems(ray_validate(raw)) == []


def test_autoscaling_cpu_and_gpu_worker_types(raw):
    assert gpu_problems(ray_validate(raw)) == []


def test_setup_installs_this_project_everywhere(raw):
    assert setup_problems(ray_validate(raw)) == []


def test_gpu_workers_get_the_cuda_build_of_torch(raw):
    def torch(commands):
        return [c for c in commands if RUNS_SETUP.search(c)]

    gpu = raw["available_node_types"]["gpu_worker"]["worker_setup_commands"]
    assert [c.split("--torch")[1].split()[0] for c in torch(gpu)] == ["cuda"]
    assert [c.split("--torch")[1].split()[0] for c in torch(raw["setup_commands"])] == ["cpu"]


def test_images_carry_python_311_and_the_installed_ray(raw):
    import ray

    images = [raw["docker"]["image"]] + [t["docker"]["worker_image"]
                                         for t in raw["available_node_types"].values() if "docker" in t]
    for image in images:
        assert f":{ray.__version__}-py311-" in image, image
    pins = (REPO_ROOT / "pyproject.toml").read_text()
    assert f'"ray[default,data,train,tune]=={ray.__version__}"' in pins
    assert '"torch==2.13.0"' in pins


def test_no_secret_in_the_file():
    text = CLUSTER_YAML.read_text()
    assert secret_hits(text) == []


# --- broken copies must fail ------------------------------------------------------------------------------

def _mutate(raw: dict, change) -> dict:
    config = copy.deepcopy(raw)
    change(config)
    return config


@pytest.mark.parametrize("change", [
    pytest.param(lambda c: c.update(idle_timout_minutes=c.pop("idle_timeout_minutes")), id="misspelled-key"),
    pytest.param(lambda c: c.update(max_workers="many"), id="max_workers-not-int"),
    pytest.param(lambda c: c["available_node_types"]["gpu_worker"]["resources"].update(GPU=0.5),
                 id="fractional-gpu-resource"),
    pytest.param(lambda c: c["available_node_types"]["cpu_worker"].pop("resources"),
                 id="type-without-resources"),
    pytest.param(lambda c: c["available_node_types"]["cpu_worker"].update(min_wrokers=0),
                 id="misspelled-type-key"),
    pytest.param(lambda c: c["docker"].update(pull_before_rnu=True), id="misspelled-docker-key"),
])
def test_ray_rejects_a_broken_schema(raw, change):
    with pytest.raises(jsonschema.ValidationError):
        ray_validate(_mutate(raw, change))


@pytest.mark.parametrize("change", [
    pytest.param(lambda c: c.update(head_node_type="no_such_type"), id="unknown-head-type"),
    pytest.param(lambda c: c["available_node_types"]["cpu_worker"].update(min_workers=99),
                 id="min-workers-above-max"),
])
def test_ray_rejects_inconsistent_fields(raw, change):
    with pytest.raises(ValueError):
        ray_validate(_mutate(raw, change))


def test_ray_rejects_docker_without_an_image(raw):
    with pytest.raises(AssertionError, match="container & image name"):
        ray_validate(_mutate(raw, lambda c: c["docker"].update(imag=c["docker"].pop("image"))))


def _replace_in_head_start(old: str, new: str):
    def change(c):
        c["head_start_ray_commands"] = [cmd.replace(old, new) for cmd in c["head_start_ray_commands"]]
    return change


def test_checks_catch_a_public_dashboard(raw):
    assert dashboard_problems(_mutate(raw, _replace_in_head_start("127.0.0.1", "0.0.0.0")))
    assert dashboard_problems(_mutate(raw, _replace_in_head_start(" --dashboard-host=127.0.0.1", "")))
    assert dashboard_problems(_mutate(raw, _replace_in_head_start("--dashboard-host=127.0.0.1",
                                                                  "--dashboard-host 0.0.0.0")))


def test_checks_catch_a_missing_token(raw):
    assert token_problems(_mutate(raw, _replace_in_head_start("RAY_AUTH_MODE=token ", "")))
    assert token_problems(_mutate(raw, lambda c: c["file_mounts"].pop("~/.ray/auth_token")))


def test_checks_catch_a_cluster_without_gpus(raw):
    def gpu(c):
        return c["available_node_types"]["gpu_worker"]

    assert gpu_problems(_mutate(raw, lambda c: gpu(c)["resources"].pop("GPU")))
    assert gpu_problems(_mutate(raw, lambda c: gpu(c).update(min_workers=1)))


def test_checks_catch_a_setup_that_skips_the_project(raw):
    def drop_install(c):
        c["available_node_types"]["gpu_worker"]["worker_setup_commands"] = [
            cmd for cmd in c["available_node_types"]["gpu_worker"]["worker_setup_commands"]
            if not INSTALL.search(cmd) and not RUNS_SETUP.search(cmd)]
    assert setup_problems(ray_validate(_mutate(raw, drop_install))) == [
        "gpu_worker: setup does not `pip install -e ~/mmray`",
        "gpu_worker: setup does not install torch==2.13.0 before the project"]
    assert setup_problems(ray_validate(_mutate(raw, lambda c: c["file_mounts"].pop("~/mmray"))))
    # the shared script is read, not trusted: without its install line no node installs the project
    script = "\n".join(line for line in SETUP_SCRIPT.read_text().splitlines() if not INSTALL.search(line))
    assert len(setup_problems(ray_validate(raw), script)) == 3


@pytest.mark.parametrize("planted", [
    "WANDB_API_KEY=0123456789abcdef",
    "api_key: sk-live-abcdefgh12345678",
    'AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI/K7MDENG"',
    "AKIAIOSFODNN7EXAMPLE",
    "RAY_AUTH_TOKEN=" + "ab" * 32,
])
def test_secret_scan_flags_planted_values(planted):
    assert secret_hits(CLUSTER_YAML.read_text() + f"\n# {planted}\n")


# --- cluster-local.yaml: the same choices on machines you have (Ray's local provider) ----------------------------

def _ports(commands: list[str]) -> set[str]:
    return set(re.findall(r"(?:--port=|\$RAY_HEAD_IP:)(\d+)", " ".join(commands)))


def test_ray_accepts_the_local_config(local):
    prepared = ray_validate(local)
    assert prepared["provider"]["type"] == "local"
    (node_type,) = prepared["available_node_types"].values()  # one type for the head and every listed worker
    assert node_type["min_workers"] == node_type["max_workers"] == len(local["provider"]["worker_ips"])
    assert set(local["auth"]) >= {"ssh_user", "ssh_private_key"}


def test_local_dashboard_is_bound_to_localhost_only_and_token_shared(local):
    prepared = ray_validate(local)
    assert dashboard_problems(prepared) == []
    assert token_problems(prepared) == []


def test_local_setup_installs_this_project_into_an_environment_of_its_own(local):
    prepared = ray_validate(local)
    assert setup_problems(prepared) == []
    for commands in (prepared["head_setup_commands"], prepared["worker_setup_commands"]):
        assert [c for c in commands if RUNS_SETUP.search(c) and "--venv ~/mmray-env" in c], commands


def test_both_configs_share_the_setup_script(raw, local):
    for config in (raw, local):
        commands = config["setup_commands"] + [c for t in config.get("available_node_types", {}).values()
                                               for c in t.get("worker_setup_commands", [])]
        assert any(RUNS_SETUP.search(c) for c in commands)
        assert not any(INSTALL.search(c) for c in commands), "install through cluster/setup.sh, not inline"
    assert INSTALL.search(SETUP_SCRIPT.read_text())


def test_trial_driver_resource_on_the_head_only(raw, local):
    assert raw["available_node_types"]["head"]["resources"].get("trial_driver", 0) > 0
    assert not any("trial_driver" in t.get("resources", {}) for t in worker_types(raw).values())
    assert any('"trial_driver"' in c for c in head_start_commands(local))
    assert not any("trial_driver" in c for c in local["worker_start_ray_commands"])


def test_local_head_runs_the_autoscaler_that_starts_workers_and_workers_follow_it(local):
    # Ray 2.60's default (v2) autoscaler never starts the local provider's workers (tests/test_launcher.py)
    assert all("RAY_enable_autoscaler_v2=0" in c for c in head_start_commands(local))
    # `ray down` stops the head only: each worker stops its Ray once the head's GCS port stops answering
    follow = [c for c in local["worker_start_ray_commands"] if "cluster/follow-head.sh" in c]
    assert len(follow) == 1 and follow[0].rstrip().endswith("&")
    assert local["worker_start_ray_commands"].index(follow[0]) > max(
        i for i, c in enumerate(local["worker_start_ray_commands"]) if "ray start" in c)
    assert _ports(head_start_commands(local)) == _ports(local["worker_start_ray_commands"]) == {"6379"}


def test_no_secret_in_the_local_file():
    assert secret_hits(LOCAL_YAML.read_text()) == []


@pytest.mark.parametrize("change", [
    pytest.param(lambda c: c.update(setup_comands=c.pop("setup_commands")), id="misspelled-key"),
    pytest.param(lambda c: c["auth"].update(ssh_privat_key=c["auth"].pop("ssh_private_key")),
                 id="misspelled-auth-key"),
])
def test_ray_rejects_a_broken_local_schema(local, change):
    with pytest.raises(jsonschema.ValidationError):
        ray_validate(_mutate(local, change))


@pytest.mark.parametrize("change", [
    pytest.param(lambda c: c["provider"].pop("worker_ips"), id="no-worker-ips"),
    pytest.param(lambda c: c.update(available_node_types={"x": {"resources": {}, "node_config": {}}}),
                 id="node-types-on-premises"),
])
def test_ray_rejects_an_incomplete_local_config(local, change):
    import click

    with pytest.raises(click.ClickException):
        ray_validate(_mutate(local, change))


def test_local_checks_catch_a_public_dashboard_a_missing_token_and_a_shared_environment(local):
    assert dashboard_problems(ray_validate(_mutate(local, _replace_in_head_start("127.0.0.1", "0.0.0.0"))))
    def no_token(c):
        c["worker_start_ray_commands"] = [x.replace("RAY_AUTH_MODE=token ", "") for x in c["worker_start_ray_commands"]]
    assert token_problems(ray_validate(_mutate(local, no_token)))
    without_venv = _mutate(local, lambda c: c.update(setup_commands=[x.replace(" --venv ~/mmray-env", "")
                                                                       for x in c["setup_commands"]]))
    with pytest.raises(AssertionError):
        test_local_setup_installs_this_project_into_an_environment_of_its_own(without_venv)
