"""`ray up` for real: cluster-local.yaml launched over SSH on this machine, the demo sweep submitted as a job
through the dashboard tunnel, the results read back, the cluster torn down with `ray down`; and three ways
`ray up` fails, by the message a user reads.

Two machines on loopback: the head on 127.0.0.1 and one worker on 127.0.0.2, each an SSH server of its own
(Debian's openssh-server on port 22, a throwaway host and client key) in PID and mount namespaces of its own:
the `ray stop` of the start commands and of `ray down` sees and stops only that machine's processes, as on
separate machines, and no other Ray instance on this one; the machine's own folder is bound over the user's
home (ssh's `~` is the home /etc/passwd names), where `ray up` puts the project, the token and the key and
where the setup commands create ~/mmray-env.

What the machines share with this one, and what the test therefore changes in cluster-local.yaml (nothing
else): the network, so the cluster listens on free ports instead of Ray's defaults and the worker names its
address; the cores, so each node offers one CPU; the temp folder's parent, so the worker gets a temp folder of
its own. The file system is shared, so results go to a folder both nodes reach (as NFS would). The node
image: python3.11, the project's dependencies preinstalled (pip offline), and a `ray` command for whichever
environment is active. The setup commands are the shipped ones: they create the environment, find torch and
every pin satisfied, and install the synced project into it.

About 4 minutes on 2 cores: `ray up` ~40 s, the worker joined ~35 s later, the job ~100 s, `ray down` ~15 s
and the worker's Ray gone ~15 s after it; the three failing `ray up` runs ~30 s together.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import psutil
import pytest
import yaml
from test_tensorboard import read_scalars

from mmray.orchestration.local_cluster import LocalCluster
from mmray.orchestration.ray_adapter import ONE_MACHINE_RAY_ENV, validate_cluster_config
from mmray.results import schema

pytestmark = pytest.mark.ray

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RAY = str(BIN / "ray")
SSHD = "/usr/sbin/sshd"
HEAD_IP, WORKER_IP, SPARE_IP = "127.0.0.1", "127.0.0.2", "127.0.0.3"
HOME = pwd.getpwuid(os.getuid()).pw_dir  # where every machine's own home is bound
NODE_OBJECT_STORE = 200 * 2**20


def _skip_or_fail(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI must run the launcher test: .ci/run installs openssh-server and rsync)")
    pytest.skip(reason)


def _free_port(host: str = "0.0.0.0") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _run(args: list, env: dict, timeout: float, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], env=env, cwd=cwd, capture_output=True, text=True, check=False,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def _output(done: subprocess.CompletedProcess) -> str:
    return f"exit {done.returncode}\n--- stdout\n{done.stdout[-6000:]}\n--- stderr\n{done.stderr[-4000:]}"


# --- the machines ----------------------------------------------------------------------------------------------

class Machine:
    """An SSH server on `ip`:22 in PID and mount namespaces of its own, where its own folder is the user's home
    (bound over the home that /etc/passwd names, which ssh's `~` means) and its own temp folder is Ray's. Stopping
    it kills its namespace's init (the sshd), and the kernel then kills every process left in the namespace."""

    def __init__(self, root: Path, name: str, ip: str, keys: Path, image: tuple[Path, dict]):
        self.name, self.ip = name, ip
        self.dir = root / name
        self.home, self.tmp = self.dir / "home", self.dir / "tmp"
        (self.home / ".ssh").mkdir(parents=True)
        self.tmp.mkdir()
        shutil.copy(keys / "user.pub", self.home / ".ssh" / "authorized_keys")
        # login shells (the launcher's) reset the PATH in /etc/profile: the image's shell start-up file adds to it
        (self.home / ".bashrc").write_text(f'export PATH="$PATH:{image[0]}"\n')
        env = {**image[1], "TMPDIR": self.tmp, "RAY_TMPDIR": self.tmp,
               "PATH": f"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:{image[0]}"}
        self.config = self.dir / "sshd_config"
        self.config.write_text("\n".join([
            f"ListenAddress {ip}:22", f"HostKey {keys / 'host'}", "AuthorizedKeysFile .ssh/authorized_keys",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password",
            "UsePAM no", "StrictModes no", "PidFile none", "PrintMotd no", "MaxStartups 50",
            "SetEnv " + " ".join(f"{k}={v}" for k, v in env.items()), ""]))
        self.log = self.dir / "sshd.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> Machine:
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "sh", "-c",
                 'mount --bind "$0" "$1" && exec "$2" -D -e -f "$3"', self.home, HOME, SSHD, self.config],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + 20
        while "Server listening" not in self.log.read_text():
            if self.process.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"sshd on {self.ip}:22 did not start: {self.log.read_text()[-1000:]}")
            time.sleep(0.1)
        return self

    @property
    def init(self) -> psutil.Process:
        """The namespace's init: the sshd, child of `unshare`."""
        return psutil.Process(self.process.pid).children()[0]

    def processes(self) -> list[psutil.Process]:
        """Every process of this machine but its SSH server (a namespace's orphans are its init's children)."""
        found = []
        for process in self.init.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if process.status() != psutil.STATUS_ZOMBIE and not process.name().startswith("sshd"):
                    found.append(process)
        return found

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(psutil.Error, IndexError):
            self.init.kill()
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait(timeout=30)


def _stage_project(target: Path) -> None:
    """What a user's clean checkout holds (tracked files and new ones git would add): `ray up` hashes every file
    under ".", and this checkout's .venv alone is gigabytes."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def _node_image(root: Path) -> tuple[Path, dict[str, str]]:
    """What every machine has before `ray up`: the project's dependencies as if installed on the machine
    (pip offline), and a bin folder, last on the PATH, with python3.11 (where the system has none) and a `ray`
    command that runs Ray with whichever python3 comes first on the PATH: ~/mmray-env's once the setup has
    activated it, as the console script pip would have put there had Ray not been installed already."""
    image = root / "image" / "bin"
    image.mkdir(parents=True)
    # this environment's packages but mmray (its editable finder would shadow the one the setup installs)
    packages = root / "image" / "site-packages"
    packages.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if "mmray" not in entry.name and entry.suffix != ".pth":
            (packages / entry.name).symlink_to(entry)
    python = Path(sys._base_executable).resolve()
    if python.is_relative_to(HOME):  # hidden on the machines, whose home is their own (pyenv's, say)
        python = Path(shutil.which("python3.11", path="/usr/local/bin:/usr/bin:/bin") or python)
    if python.is_relative_to(HOME):
        _skip_or_fail(f"the machines need a python3.11 outside {HOME}, e.g. Debian's python3.11")
    (image / "python3.11").symlink_to(python)
    (image / "ray").write_text("#!/usr/bin/env python3\nimport sys\nfrom ray.scripts.scripts import main\n"
                               "sys.exit(main())\n")
    (image / "ray").chmod(0o755)
    return image, {
        "PYTHONPATH": str(packages),
        "PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0", "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        # every node shares this machine's 2 cores: no metrics, no preemption watcher, no usage stats
        **ONE_MACHINE_RAY_ENV, "RAY_USAGE_STATS_ENABLED": "0", "RAY_DATA_DISABLE_PROGRESS_BARS": "1"}


class Setting:
    """This machine as the user's laptop plus the SSH servers of the cluster's machines."""

    def __init__(self):
        for tool in (SSHD, "unshare", "ssh", "ssh-keygen", "rsync"):
            if not shutil.which(tool):
                _skip_or_fail(f"{tool} is not installed (Debian: openssh-server, rsync)")
        if os.geteuid() != 0:
            _skip_or_fail("starting sshd in PID namespaces of its own needs root")
        # short: Ray's socket paths under a node's temp folder must stay within 107 characters
        self.root = Path(tempfile.mkdtemp(prefix="mmup-"))
        self.keys = self.root / "keys"
        self.keys.mkdir()
        for key in ("host", "user", "stranger"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"mmray-test-{key}", "-f",
                            self.keys / key], check=True)
        self.laptop = self.root / "laptop"
        (self.laptop / ".ray").mkdir(parents=True)
        (self.laptop / "tmp").mkdir()
        self.token = secrets.token_hex(32)
        (self.laptop / ".ray" / "auth_token").write_text(self.token)
        self.project = self.root / "project"
        _stage_project(self.project)
        self.results = self.root / "shared"
        self.image = _node_image(self.root)
        self.machines: list[Machine] = []
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation folder
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "AUTOSCALER_"))}
        self.env |= {"HOME": str(self.laptop), "TMPDIR": str(self.laptop / "tmp"),
                     "RAY_TMPDIR": str(self.laptop / "tmp"), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
                     "RAY_USAGE_STATS_ENABLED": "0",
                     # a machine that never answers: `ray up` retries SSH for 15 minutes by default
                     "AUTOSCALER_NODE_START_WAIT_S": "60"}

    def machine(self, name: str, ip: str) -> Machine:
        machine = Machine(self.root, name, ip, self.keys, self.image)
        self.machines.append(machine)
        try:
            return machine.start()
        except (RuntimeError, OSError) as error:
            _skip_or_fail(f"cannot start an SSH server here: {error}")

    def config(self, head_ip: str, worker_ips: list[str]) -> dict:
        """cluster-local.yaml as a user fills it in, with the ports of this shared machine."""
        config = yaml.safe_load((REPO / "cluster-local.yaml").read_text())
        config["cluster_name"] = f"mmray-test-{secrets.token_hex(3)}"
        config["provider"].update(head_ip=head_ip, worker_ips=worker_ips)
        config["auth"] = {"ssh_user": getpass.getuser(), "ssh_private_key": str(self.keys / "user")}
        self.gcs_port, self.dashboard_port = _free_port(), _free_port(HEAD_IP)
        one_cpu = f"--num-cpus=1 --object-store-memory={NODE_OBJECT_STORE}"
        head = (f" --dashboard-port={self.dashboard_port} {one_cpu} --ray-client-server-port={_free_port()}"
                f" --dashboard-agent-listen-port={_free_port()}")
        # A worker names its address: seen from this machine, every loopback address routes as 127.0.0.1, and
        # the autoscaler tells the workers it started by the address it was given. And its temp folder: a worker
        # takes the head's by default, where it would unpack a job's working folder from under the job's driver.
        worker = (f" {one_cpu} --dashboard-agent-listen-port={_free_port()} --temp-dir=$RAY_TMPDIR/ray"
                  + "".join(f" --node-ip-address={ip}" for ip in worker_ips[:1]))
        for key, extra in (("head_start_ray_commands", head), ("worker_start_ray_commands", worker)):
            commands = [c.replace("6379", str(self.gcs_port)) for c in config[key]]
            config[key] = [c + extra if "ray start" in c else c for c in commands]
            assert sum("ray start" in c for c in config[key]) == 1
        validate_cluster_config(config)
        return config

    def write(self, config: dict) -> Path:
        path = self.project / f"{config['cluster_name']}.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def ray(self, *args, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
        return _run([RAY, *args], env or self.env, timeout, cwd=self.project)

    def close(self) -> None:
        for machine in self.machines:
            machine.stop()
        user_hash = hashlib.sha256(getpass.getuser().encode()).hexdigest()[:10]
        shutil.rmtree(f"/tmp/ray_ssh_{user_hash}", ignore_errors=True)  # `ray up`'s SSH control sockets
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def setting():
    here = Setting()
    try:
        yield here
    finally:
        here.close()


# --- the cluster -------------------------------------------------------------------------------------------------

def _get(url: str, token: str | None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:  # nothing listening (yet)
        return 0, b""


def _wait_for(what: str, check, timeout: float, interval: float = 2):
    deadline = time.time() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.time() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@pytest.fixture(scope="module")
def cluster(setting):
    """Another Ray instance beside it (which no `ray stop` of the cluster may touch), the two machines, then
    `ray up`; at the end, `ray down` if a test has not, and the machines stopped (which kills whatever is left)."""
    head, worker = setting.machine("head", HEAD_IP), setting.machine("worker", WORKER_IP)
    bystander = LocalCluster(nodes=1, cpus_per_node=1).start()
    tunnel = None
    try:
        others = _processes_of(bystander)
        assert len(others) >= 4, others  # GCS, raylet, dashboard, agents
        config = setting.config(HEAD_IP, [WORKER_IP])
        path = setting.write(config)
        started = time.perf_counter()
        up = setting.ray("up", "-y", "--no-config-cache", path.name, timeout=360)
        assert up.returncode == 0, _output(up)
        state = {"config": path, "head": head, "worker": worker, "others": others, "started": started,
                 "up_seconds": time.perf_counter() - started, "down": None, "bystander": bystander}
        # the dashboard through `ray dashboard`'s SSH tunnel, as a user reaches it
        local = _free_port(HEAD_IP)
        tunnel = subprocess.Popen([RAY, "dashboard", "-p", str(local), "--remote-port", str(setting.dashboard_port),
                                   path.name], cwd=setting.project, env=setting.env, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        state["url"], state["tunnel"] = f"http://127.0.0.1:{local}", tunnel
        _wait_for("the dashboard tunnel", lambda: _get(state["url"] + "/api/version", setting.token)[0] == 200,
                  timeout=60)
        yield state
    finally:
        if tunnel is not None:
            _close(tunnel)
        if "state" in locals() and state["down"] is None:
            setting.ray("down", "-y", path.name, timeout=300)
        bystander.stop()


def _processes_of(cluster: LocalCluster) -> list[psutil.Process]:
    marks = (cluster._temp.name, cluster.address)
    return [p for p in psutil.process_iter(["cmdline"]) if cluster._started_by_us(p, marks)]


def _close(tunnel: subprocess.Popen) -> None:
    """`ray dashboard` and its ssh (a process group of their own)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(tunnel.pid, 9)
    tunnel.wait()


def _alive_nodes(cluster, token) -> int:
    status, body = _get(cluster["url"] + "/api/v0/nodes?detail=false&limit=100", token)
    if status != 200:
        return 0
    nodes = json.loads(body)["data"]["result"]["result"]
    return sum(1 for node in nodes if node["state"] == "ALIVE")


@pytest.mark.timeout(600)
def test_ray_up_installs_the_project_in_an_environment_of_each_node(setting, cluster):
    print(f"ray up: {cluster['up_seconds']:.0f} s")
    _wait_for("the worker to join", lambda: _alive_nodes(cluster, setting.token) == 2, timeout=240, interval=5)
    print(f"ray up -> both nodes alive: {time.perf_counter() - cluster['started']:.0f} s")
    for machine in (cluster["head"], cluster["worker"]):
        home = machine.home
        assert (home / "mmray" / "pyproject.toml").read_bytes() == (REPO / "pyproject.toml").read_bytes()
        assert not (home / "mmray" / ".git").exists() and not (home / "mmray" / ".venv").exists()
        assert (home / ".ray" / "auth_token").read_text() == setting.token
        assert f"source {HOME}/mmray-env/bin/activate" in (home / ".bashrc").read_text()
        editable = list((home / "mmray-env" / "lib").glob("python3.11/site-packages/__editable__*mmray*"))
        assert editable, f"{machine.name}: mmray is not installed in ~/mmray-env"
    done = setting.ray("exec", cluster["config"].name,
                       # -P: not the login folder first on sys.path, where the synced ~/mmray is a folder too
                       "python -P -c 'import sys, mmray; print(sys.prefix, mmray.__file__)'", timeout=120)
    assert done.returncode == 0, _output(done)
    assert f"{HOME}/mmray-env {HOME}/mmray/mmray/__init__.py" in done.stdout, done.stdout[-2000:]


@pytest.mark.timeout(120)
def test_the_jobs_api_refuses_a_request_without_the_token(setting, cluster):
    assert _get(cluster["url"] + "/api/jobs/", setting.token)[0] == 200
    assert _get(cluster["url"] + "/api/jobs/", None)[0] == 401
    assert _get(cluster["url"] + "/api/jobs/", secrets.token_hex(32))[0] in (401, 403)
    without = {k: v for k, v in setting.env.items() if k != "RAY_AUTH_MODE"} | {"HOME": str(setting.root)}
    done = setting.ray("job", "list", "--address", cluster["url"], env=without, timeout=120)
    assert done.returncode != 0
    assert "auth" in (done.stdout + done.stderr).lower() or "401" in done.stdout + done.stderr


@pytest.mark.timeout(600)
def test_demo_sweep_submitted_through_the_tunnel_runs_on_both_nodes(setting, cluster):
    results, cache = setting.results / "demo", setting.results / "cache"
    env = setting.env | {"RAY_AUTH_MODE": "token"}
    started = time.perf_counter()
    for _ in range(12):  # until the head's job agent has registered ("No available agent": nothing ran)
        done = setting.ray(
            "job", "submit", "--address", cluster["url"], "--working-dir", ".", "--",
            "python", "-m", "mmray.cli", "sweep", "sweeps/demo.yaml", "--overwrite", "--no-report", "--tensorboard",
            "--results", results, "--cache", cache,
            "--set", "search.num_samples=2", "--set", "train.epochs=2", "--set", "scheduler.type=none",
            "--set", "benchmarks=[{name: synthetic-av, params: {n_train: 600, n_val: 100, n_test: 200}}]",
            "--set", "resources={workers_per_trial: 2, cpus_per_worker: 0.5, placement_strategy: SPREAD}",
            env=env, timeout=480)
        if "No available agent" not in done.stdout + done.stderr:
            break
        time.sleep(5)
    cluster["job_seconds"] = time.perf_counter() - started
    print(f"job: {cluster['job_seconds']:.0f} s")
    assert done.returncode == 0 and "succeeded" in done.stdout, _output(done)
    trials = pd.read_parquet(results / schema.TRIALS_FILE)
    epochs = pd.read_parquet(results / schema.EPOCHS_FILE)
    assert len(trials) == 2 and (trials[schema.STATUS] == schema.STATUS_COMPLETED).all()
    assert len(epochs) == 4 and not epochs.duplicated([schema.TRIAL_ID, schema.EPOCH]).any()
    assert sorted(epochs[schema.EPOCH]) == [1, 1, 2, 2]
    nodes = [set(value.split(",")) for value in trials[schema.NODES]]
    assert all(len(n) == 2 for n in nodes), nodes  # each trial's two Train workers: one on each machine
    # --tensorboard: per trial, every epoch's metrics as scalars
    for trial_id in trials[schema.TRIAL_ID]:
        scalars = read_scalars(results / "tensorboard", trial_id)
        rows = epochs[epochs[schema.TRIAL_ID] == trial_id].set_index(schema.EPOCH)
        assert {step for step, _ in scalars["val/fused_acc"]} == {1, 2}
        for step, value in scalars["val/fused_acc"]:
            assert value == pytest.approx(rows.loc[step, "val/fused_acc"], rel=1e-6)


@pytest.mark.timeout(300)
def test_ray_down_leaves_no_process_of_the_cluster_and_no_other_instance_touched(setting, cluster):
    _close(cluster["tunnel"])  # the user stops `ray dashboard` (its session on the head ends)
    assert cluster["head"].processes() and cluster["worker"].processes()
    started = time.perf_counter()
    down = setting.ray("down", "-y", cluster["config"].name, timeout=300)
    cluster["down"] = down
    assert down.returncode == 0, _output(down)
    down_seconds = time.perf_counter() - started
    _wait_for("the head's SSH sessions to end", lambda: cluster["head"].processes() == [], timeout=15, interval=1)
    # the local provider leaves the workers' machines alone: cluster/follow-head.sh, started with the worker's
    # Ray, stops it once the head is gone
    _wait_for("the worker's Ray to stop", lambda: cluster["worker"].processes() == [], timeout=90, interval=2)
    gone = time.perf_counter() - started
    print(f"ray down: {down_seconds:.0f} s; worker's Ray gone after {gone:.0f} s; "
          f"ray up -> job finished -> ray down: {time.perf_counter() - cluster['started']:.0f} s")
    stopped = [p for p in cluster["others"] if not p.is_running() or p.status() == psutil.STATUS_ZOMBIE]
    assert stopped == [], f"processes of the other Ray instance stopped: {stopped}"
    assert cluster["bystander"]._ray("status", "--address", cluster["bystander"].address).returncode == 0


# --- a cluster that fails to come up: what the user reads --------------------------------------------------------

@pytest.fixture(scope="module")
def spare(setting):
    """A third machine, for `ray up` runs that fail (its home is not the running cluster's)."""
    return setting.machine("spare", SPARE_IP)


def _failing_up(setting, config: dict) -> str:
    env = setting.env | {"AUTOSCALER_NODE_START_WAIT_S": "10"}  # 15 minutes by default
    started = time.perf_counter()
    done = setting.ray("up", "-y", "--no-config-cache", setting.write(config).name, env=env, timeout=300)
    print(f"failed ray up: {time.perf_counter() - started:.0f} s")
    assert done.returncode != 0, _output(done)
    return done.stdout + "\n" + done.stderr


@pytest.mark.timeout(180)
def test_ray_up_with_a_key_the_machine_does_not_accept(setting, spare):
    config = setting.config(SPARE_IP, [])
    config["auth"]["ssh_private_key"] = str(setting.keys / "stranger")
    _expect(_failing_up(setting, config), f"{getpass.getuser()}@{SPARE_IP}: Permission denied (publickey).",
            "SSH still not available (SSH command failed.)", "wait_ready timeout exceeded.",
            "Failed to setup head node.")


@pytest.mark.timeout(180)
def test_ray_up_with_a_machine_that_does_not_answer(setting):
    _expect(_failing_up(setting, setting.config("127.0.0.4", [])),
            "ssh: connect to host 127.0.0.4 port 22: Connection refused",
            "SSH still not available (SSH command failed.)", "wait_ready timeout exceeded.",
            "Failed to setup head node.")


@pytest.mark.timeout(180)
def test_ray_up_with_a_setup_command_that_fails(setting, spare):
    config = setting.config(SPARE_IP, [])
    config["setup_commands"] = [c.replace("--torch cpu", "--torch rocm") for c in config["setup_commands"]]
    _expect(_failing_up(setting, config), "cluster/setup.sh: --torch must be cpu or cuda, not rocm",
            "Error message: SSH command failed.", "Failed to setup head node.")


def _expect(out: str, *lines: str) -> None:
    plain = re.sub(r"\x1b\[[0-9;]*m", "", out)  # without the terminal colours
    missing = [line for line in lines if line not in plain]
    assert missing == [], f"missing {missing} in:\n{plain[-4000:]}"
