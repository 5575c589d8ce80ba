"""Contract tests of what mmray takes from Ray's internals (mmray.orchestration.ray_adapter): each fails with a
clear message on a Ray version where the name or its behaviour moved. Covered elsewhere, on real sweeps:
freeing placement groups of dead controllers (test_sweep_ray), the cluster launcher's config check
(test_cluster_config)."""

from __future__ import annotations

import os
import tempfile
import time

import pytest

from mmray.orchestration import ray_adapter


def test_a_moved_private_name_is_one_clear_error():
    with pytest.raises(ImportError) as caught:
        ray_adapter._private("ray.train.v2._internal.execution.controller", "NoSuchController")
    message = str(caught.value)
    assert "NoSuchController" in message and f"ray=={ray_adapter.TESTED_RAY}" in message
    assert "mmray/orchestration/ray_adapter.py" in message


def test_the_controller_reads_the_poll_interval_variable_the_trial_sets():
    import inspect

    source = inspect.getsource(ray_adapter.TrainController)
    assert "HEALTH_CHECK_INTERVAL_S_ENV_VAR" in source, \
        "Train's controller no longer reads the health-check interval variable: trials end 2 s late again"


def test_the_trainer_overrides_still_override_something():
    from ray.train.torch import TorchTrainer

    for name in ("_initialize_and_run_controller", "_create_default_callbacks"):
        assert callable(getattr(TorchTrainer, name, None)), f"TorchTrainer.{name} is gone: TrialTorchTrainer " \
                                                             "overrides nothing (update ray_adapter.py)"


def test_the_environment_is_restored_and_a_users_value_wins(monkeypatch):
    monkeypatch.setenv("MMRAY_TEST_USERS", "mine")
    monkeypatch.delenv("MMRAY_TEST_ADDED", raising=False)
    before = dict(os.environ)
    with ray_adapter.process_environment({"MMRAY_TEST_USERS": "sweep's", "MMRAY_TEST_ADDED": "1"}):
        assert os.environ["MMRAY_TEST_USERS"] == "mine" and os.environ["MMRAY_TEST_ADDED"] == "1"
    assert dict(os.environ) == before
    with pytest.raises(RuntimeError), ray_adapter.process_environment({"MMRAY_TEST_ADDED": "1"}):
        raise RuntimeError("a failing sweep")
    assert dict(os.environ) == before


@pytest.fixture(scope="module")
def ray_instance():
    import ray

    from mmray.orchestration.sweep import ensure_ray

    ensure_ray()
    yield
    ray.shutdown()


@pytest.mark.ray
def test_gcs_key_value_store_round_trip(ray_instance):
    namespace = "mmray_contract_test"
    ray_adapter.kv_put("run/00000001", b"first", namespace)
    ray_adapter.kv_put("run/00000002", b"second", namespace)
    ray_adapter.kv_put("other", b"kept", namespace)
    assert ray_adapter.kv_get("run/00000001", namespace) == b"first"
    assert sorted(ray_adapter.kv_keys(namespace, prefix="run/")) == [b"run/00000001", b"run/00000002"]
    ray_adapter.kv_delete("run/", namespace, prefix=True)
    assert ray_adapter.kv_keys(namespace) == [b"other"]
    ray_adapter.kv_delete("other", namespace)
    assert ray_adapter.kv_get("other", namespace) is None


@pytest.mark.ray
def test_actor_table_tells_alive_from_dead(ray_instance):
    import ray

    @ray.remote(num_cpus=0)
    class Probe:
        def actor_id(self) -> str:
            return ray.get_runtime_context().get_actor_id()

    probe = Probe.remote()
    actor_id = ray.get(probe.actor_id.remote())
    assert ray_adapter.actor_state(actor_id) == "ALIVE"
    assert ray_adapter.actor_classes()["Probe"] == 1  # a class defined in a function, named without its qualifier
    ray.kill(probe)
    for _ in range(50):  # the GCS marks a killed actor dead within moments
        if ray_adapter.actor_state(actor_id) == "DEAD":
            break
        time.sleep(0.1)
    assert ray_adapter.actor_state(actor_id) == "DEAD"


@pytest.mark.ray
@pytest.mark.timeout(240)
def test_a_trainer_fitted_in_an_actor_runs_its_controller_there_and_records_its_placement_group(ray_instance):
    """What every trial of several workers relies on: the controller runs in the trial's actor (no
    TrainController actor), no PlacementGroupCleaner actor starts, the poll interval is set in that actor only, and the
    worker group's placement group is recorded under the actor's id for the sweep's reaper."""
    import ray
    from ray.train import RunConfig, ScalingConfig

    @ray.remote(num_cpus=0)
    class Trial:
        def fit(self, storage: str) -> tuple[str, str | None]:
            def train_loop(config):
                ray.train.report({"step": 0})

            trainer = ray_adapter.TrialTorchTrainer(
                train_loop, scaling_config=ScalingConfig(num_workers=1, resources_per_worker={"CPU": 0.5}),
                run_config=RunConfig(name="contract", storage_path=storage))
            trainer.fit()
            return ray.get_runtime_context().get_actor_id(), os.environ.get(ray_adapter.HEALTH_CHECK_INTERVAL_ENV)

    with tempfile.TemporaryDirectory() as storage:
        actor_id, interval = ray.get(Trial.remote().fit.remote(storage))
    assert interval == str(ray_adapter.WORKER_POLL_SECONDS)
    assert ray_adapter.HEALTH_CHECK_INTERVAL_ENV not in os.environ  # set in the trial's actor only
    assert actor_id.encode() in ray_adapter.kv_keys(ray_adapter.PLACEMENT_KV_NAMESPACE)
    assert not {"TrainController", "PlacementGroupCleaner"} & set(ray_adapter.actor_classes())
    ray_adapter.kv_delete(actor_id, ray_adapter.PLACEMENT_KV_NAMESPACE)


@pytest.mark.ray
def test_ray_data_and_train_shared_actors_start_on_request(ray_instance):
    """A sweep of TorchTrainer trials asks for them before its first trial (mmray.orchestration.sweep)."""
    import ray

    ray_adapter.start_shared_actors()
    assert ray.get_actor("datasets_stats_actor", namespace="_dataset_stats_actor") is not None
    assert ray.get_actor("AutoscalingCoordinator", namespace="AutoscalingCoordinator") is not None
