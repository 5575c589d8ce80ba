"""Real sweeps on a real local Ray instance: Tune + Optuna + ASHA driving TorchTrainers fed by Ray Data."""

from __future__ import annotations

import os
import time

import pandas as pd
import pytest

from mmray import api
from mmray.errors import MmrayError
from mmray.results import schema
from mmray.results.artifacts import load_artifacts

pytestmark = pytest.mark.ray

TINY_SYNTHETIC = {"n_train": 400, "n_val": 100, "n_test": 200, "image_size": 16, "n_mels": 16, "frames": 16,
                  "noise": 0.3, "distractor": 0.2}  # easier than the demo: two short epochs must show learning


@pytest.fixture(scope="module")
def ray_session():
    import ray

    from mmray.orchestration.sweep import ensure_ray

    ensure_ray()
    yield
    ray.shutdown()


def _spec(tmp_path, text: str):
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return api.load_spec(path)


@pytest.fixture(scope="module")
def synthetic_sweep(tmp_path_factory, ray_session):
    tmp = tmp_path_factory.mktemp("sweep")
    spec = _spec(tmp, f"""
name: tiny
benchmarks:
  - name: synthetic-av
    params: {TINY_SYNTHETIC}
methods: [pavlov]
train: {{epochs: 2, batch_size: 64, probe_examples: 200}}
method_params: {{pavlov: {{encoder_width: 8, hidden_dim: 32}}}}
search_space:
  method.latent_dim: {{choice: [8, 16]}}
  train.lr: {{loguniform: [1.0e-3, 3.0e-3]}}
search: {{num_samples: 2, metric: val/fused_acc, mode: max}}
scheduler: {{type: asha, grace_period: 1}}
resources: {{max_concurrent_trials: 1}}
""")
    lines: list[str] = []
    environment_before = dict(os.environ)
    out = api.run_sweep(spec, cache_dir=tmp / "cache", results_dir=tmp / "results", log=lines.append)
    ENVIRONMENT_AFTER_SWEEP.update(environment=(environment_before, dict(os.environ)))
    return out, lines


ENVIRONMENT_AFTER_SWEEP: dict = {}  # the caller's environment before and after the module's sweep


def test_a_sweep_leaves_the_callers_environment_as_it_was(synthetic_sweep):
    """A notebook that runs a sweep keeps its environment: what mmray sets for Ray and Tune is restored."""
    before, after = ENVIRONMENT_AFTER_SWEEP["environment"]
    changed = {k: after.get(k) for k in set(before) | set(after) if before.get(k) != after.get(k)}
    changed.pop("CRC32C_SW_MODE", None)  # tensorboardX sets it when Tune first imports it: not a sweep's setting
    assert changed == {}


def test_one_worker_trials_start_no_ray_data_actors(synthetic_sweep):
    """They read their shards themselves: no stats actor, coordinator or read worker (~450 MiB) for them. The
    first sweep of this module's Ray instance, so no earlier sweep started them."""
    from mmray.orchestration.ray_adapter import actor_classes

    started = actor_classes()
    assert started["ImplicitFunc"] >= 1, started  # the trials' actors
    assert not {"_StatsActor", "_AutoscalingCoordinatorActor"} & set(started), started


def test_sweep_writes_both_tables_with_one_row_per_trial_and_epoch(synthetic_sweep):
    out, _ = synthetic_sweep
    results = api.load_results(out)
    trials, epochs = results.trials, results.epochs
    assert len(trials) == 2
    assert trials[schema.TRIAL_ID].is_unique
    assert set(trials[schema.STATUS]) <= {schema.STATUS_COMPLETED, schema.STATUS_STOPPED}
    assert (trials[schema.BENCHMARK] == "synthetic-av").all() and (trials[schema.METHOD] == "pavlov").all()
    assert len(epochs) == trials[schema.EPOCHS_RUN].sum()
    assert trials[schema.EPOCHS_RUN].between(1, 2).all()
    # every searched value is its own config column, and every trial reports the headline metrics
    assert {"config/method/latent_dim", "config/train/lr"} <= set(trials.columns)
    assert set(trials["config/method/latent_dim"]) <= {8, 16}
    for column in ("best/val/fused_acc", "final/test/fused_acc", "final/test/transfer_image_to_audio",
                   "final/test/recall@1_image_to_audio", "final/test/recall@5_audio_to_image",
                   "final/test/pair_recall@10_image_to_audio", "final/test/map_audio_to_image",
                   "final/test/nmi_fused", "final/val/fused_acc_without_audio", "final/test/fused_acc_drop50_image"):
        assert trials[column].between(0, 1).all(), column
    for column in ("final/test/alignment_image_audio", "final/test/uniformity_fused", "final/val/silhouette_image"):
        assert trials[column].notna().all(), column
    assert (trials["final/test/fused_acc_drop0_audio"] <= 1).all()
    assert (trials[schema.WALL_SECONDS] > 0).all()


def test_finished_trials_store_their_pictures_as_data(synthetic_sweep):
    out, _ = synthetic_sweep
    trials = api.load_results(out).trials
    completed = trials[trials[schema.STATUS] == schema.STATUS_COMPLETED]
    assert len(completed) >= 1  # ASHA keeps at least the first trial to its last epoch
    mapped = []
    for trial_id in completed[schema.TRIAL_ID]:
        tables = load_artifacts(out, trial_id)
        assert set(tables) - {schema.ARTIFACT_TSNE} == {
            schema.ARTIFACT_EMBEDDINGS, schema.ARTIFACT_ROTATIONS, schema.ARTIFACT_RECONSTRUCTIONS,
            schema.ARTIFACT_CLUSTER_RELATIONSHIPS, schema.ARTIFACT_CLUSTER_RELATIONS,
            schema.ARTIFACT_CLUSTER_ZONES}  # pavlov generates no text
        sample = tables[schema.ARTIFACT_EMBEDDINGS]
        assert len(sample) == 3 * TINY_SYNTHETIC["n_test"]  # fewer than 500 test pairs: all of them, 3 spaces
        assert set(sample.loc[sample[schema.IN_SHARED_MAP], schema.MODALITY]) == {"image", "audio"}
        if schema.ARTIFACT_TSNE in tables:
            mapped.append(trial_id)
            tsne = tables[schema.ARTIFACT_TSNE]
            assert set(tsne[schema.MAP]) == {"image", "audio", "fused", schema.SHARED_MAP}
            assert len(tsne) == 5 * TINY_SYNTHETIC["n_test"]
            assert tsne[[schema.X, schema.Y]].notna().all().all()
    # maps cost seconds of t-SNE: drawn once the sweep has ended, for the best trial only (the report's)
    best = completed.sort_values("best/val/fused_acc", ascending=False, kind="stable")[schema.TRIAL_ID].iloc[0]
    assert mapped == [best]
    for trial_id in completed[schema.TRIAL_ID]:
        tables = load_artifacts(out, trial_id)
        pairs = tables[schema.ARTIFACT_RECONSTRUCTIONS].groupby([schema.SOURCE, schema.TARGET]).size()
        assert set(pairs.index) == {(a, b) for a in ("image", "audio") for b in ("image", "audio")}
        assert tables[schema.ARTIFACT_RECONSTRUCTIONS][schema.ORIGINAL_WAV].isna().all()  # synthetic-av: no sound
        assert len(tables[schema.ARTIFACT_CLUSTER_ZONES]) == TINY_SYNTHETIC["n_test"]
        rotations = tables[schema.ARTIFACT_ROTATIONS]
        latent = int(trials.set_index(schema.TRIAL_ID).loc[trial_id, "config/method/latent_dim"])
        assert len(rotations) == 2 * latent * latent


def test_one_worker_trials_train_in_one_reused_tune_actor(synthetic_sweep):
    """Trials of one CPU worker train in their Tune actor, which Tune hands the next trial: two trials run one
    at a time start one trial actor and no Train actors at all (a TrainController, RayTrainWorker,
    SynchronizationActor, DatasetManager and PlacementGroupCleaner per trial would each be a process start on
    its path to the first batch), and no _QueueActor (TuneReportCallback's)."""
    from mmray.orchestration.ray_adapter import actor_classes

    assert len(api.load_results(synthetic_sweep[0]).trials) == 2
    started = actor_classes()  # every actor this instance has run, dead ones included
    assert started["ImplicitFunc"] == 1, started
    assert not {"TrainController", "RayTrainWorker", "SynchronizationActor", "DatasetManager",
                "PlacementGroupCleaner", "_QueueActor"} & set(started)


def _free_until(done, seconds: float = 10.0) -> int:
    """Run the reaper until `done()` (the GCS marks a killed actor dead within moments); how many it freed."""
    from mmray.orchestration.placement import free_orphaned_placement_groups

    freed, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        freed += free_orphaned_placement_groups()
        if done():
            return freed
        time.sleep(0.2)
    raise AssertionError(f"not done after {seconds} s of freeing ({freed} freed)")


def test_default_concurrency_fills_the_cpus_with_one_worker_trials():
    """One-CPU-worker trials read their own shards: every CPU trains. Trials fed by Ray Data keep one for reads."""
    from mmray.config import ResourcesConfig
    from mmray.orchestration.sweep import default_concurrency

    assert default_concurrency(ResourcesConfig(), 2) == 2
    assert default_concurrency(ResourcesConfig(cpus_per_worker=2), 5) == 2
    assert default_concurrency(ResourcesConfig(workers_per_trial=2), 5) == 2  # (5 - 1) // 2
    assert default_concurrency(ResourcesConfig(gpus_per_worker=1), 2) == 1
    assert default_concurrency(ResourcesConfig(cpus_per_worker=4), 2) == 1  # at least one


def test_one_worker_trials_run_side_by_side_by_default(tmp_path, ray_session):
    """No max_concurrent_trials on a 2-CPU instance: the two trials of a sweep train at the same time."""
    import ray

    if ray.cluster_resources().get("CPU", 0) < 2:
        pytest.skip(f"the local Ray instance has {ray.cluster_resources().get('CPU')} CPU; two trials need 2")
    spec = _spec(tmp_path, f"""
name: side-by-side
benchmarks:
  - name: synthetic-av
    params: {TINY_SYNTHETIC}
methods: [pavlov]
train: {{epochs: 3, batch_size: 64, probe_examples: 200}}
method_params: {{pavlov: {{encoder_width: 8, hidden_dim: 32, latent_dim: 16}}}}
search_space:
  train.lr: {{choice: [1.0e-3, 3.0e-3]}}
search: {{algorithm: grid, metric: val/fused_acc, mode: max}}
scheduler: {{type: none}}
""")
    trials = api.load_results(api.run_sweep(spec, cache_dir=tmp_path / "cache", results_dir=tmp_path / "results",
                                            report=False, log=lambda *_: None)).trials
    assert len(trials) == 2 and (trials[schema.STATUS] == schema.STATUS_COMPLETED).all()
    started = trials[schema.FINISHED_AT] - pd.to_timedelta(trials[schema.WALL_SECONDS], unit="s")
    overlap = (trials[schema.FINISHED_AT].min() - started.max()).total_seconds()
    assert overlap > 0.5 * trials[schema.WALL_SECONDS].min(), (
        f"the trials overlapped {overlap:.1f} s of {list(trials[schema.WALL_SECONDS])} s: one ran after the other")


def test_placement_groups_of_dead_controllers_are_freed(ray_session):
    """What a trial stopped by ASHA leaves: a controller that recorded its worker group's placement group and
    died without removing it. The driver's reaper removes that group and forgets it; a live controller's
    group stays."""
    import types

    import ray
    from ray.util.placement_group import placement_group, placement_group_table

    from mmray.orchestration.ray_adapter import PLACEMENT_KV_NAMESPACE, PlacementGroupRecorder, kv_keys

    @ray.remote(num_cpus=0)
    class Controller:  # runs the Train callback as a controller does, around a group it creates
        def start_worker_group(self):
            group = placement_group([{"CPU": 0.5}])
            ray.get(group.ready())
            state = types.SimpleNamespace(placement_group_handle=types.SimpleNamespace(placement_group=group))
            callback = PlacementGroupRecorder()
            callback.after_controller_start(train_run_context=None)
            callback.after_worker_group_start(types.SimpleNamespace(get_worker_group_state=lambda: state))
            return group

    _free_until(lambda: not kv_keys(PLACEMENT_KV_NAMESPACE))  # whatever earlier sweeps left
    live, dead = Controller.remote(), Controller.remote()
    live_group, dead_group = ray.get([live.start_worker_group.remote(), dead.start_worker_group.remote()])
    assert len(kv_keys(PLACEMENT_KV_NAMESPACE)) == 2
    ray.kill(dead)
    assert _free_until(lambda: placement_group_table(dead_group)["state"] == "REMOVED") == 1
    assert placement_group_table(dead_group)["state"] == "REMOVED"
    assert placement_group_table(live_group)["state"] == "CREATED"
    assert len(kv_keys(PLACEMENT_KV_NAMESPACE)) == 1
    ray.kill(live)
    assert _free_until(lambda: placement_group_table(live_group)["state"] == "REMOVED") == 1
    assert kv_keys(PLACEMENT_KV_NAMESPACE) == []


@pytest.mark.timeout(150)  # a deadlocked trial would otherwise hold the suite for its whole timeout
@pytest.mark.parametrize("fail_at", [None, 2])
def test_every_report_reaches_a_slow_driver_in_order(ray_session, tmp_path, fail_at):
    """The driver takes 4 s over each result while the run reports four within moments and ends. Ray's
    TuneReportCallback deadlocks the trial here (checked: it hangs; mmray.orchestration.reporting). Every report
    must reach Tune in order, and a failing run's error must follow the reports made before it."""
    import ray.train
    from ray import tune
    from ray.train import RunConfig, ScalingConfig

    from mmray.orchestration.ray_adapter import TrialTorchTrainer
    from mmray.orchestration.reporting import ReportForwarder, fit_reporting_to_tune, new_channel
    from mmray.orchestration.sweep import trial_resources

    def count_and_maybe_fail(config: dict) -> None:  # the Train workers' loop
        for step in range(4):
            if step == config["fail_at"]:
                raise RuntimeError(f"failing at step {step} on purpose")
            ray.train.report({"step": step})

    def fit_in_tune(config: dict) -> None:  # the trainable, as mmray.orchestration.trial.run_trial does it
        channel = new_channel()
        trainer = TrialTorchTrainer(
            count_and_maybe_fail, train_loop_config=config,
            scaling_config=ScalingConfig(num_workers=1, resources_per_worker={"CPU": 1}),
            run_config=RunConfig(name=tune.get_context().get_trial_id(), storage_path=config["storage"],
                                 callbacks=[ReportForwarder(channel)]))
        fit_reporting_to_tune(trainer, channel)

    class SlowDriver(tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            time.sleep(4)

    spec = _spec(tmp_path, "name: slow\nbenchmarks: [synthetic-av]\nmethods: [pavlov]\n"  # a TorchTrainer trial
                           "resources: {workers_per_trial: 2, cpus_per_worker: 0.5}\n")
    tuner = tune.Tuner(tune.with_resources(fit_in_tune, trial_resources(spec)),
                       param_space={"fail_at": fail_at, "storage": str(tmp_path / "train")},
                       run_config=tune.RunConfig(storage_path=str(tmp_path / "tune"), callbacks=[SlowDriver()]))
    result = tuner.fit()[0]
    reached = 4 if fail_at is None else fail_at
    assert result.metrics_dataframe["step"].tolist() == list(range(reached))
    if fail_at is None:
        assert result.error is None
    else:
        assert f"failing at step {fail_at} on purpose" in str(result.error)


def test_sweep_learns_above_chance(synthetic_sweep):
    trials = api.load_results(synthetic_sweep[0]).trials
    assert trials["best/val/fused_acc"].max() > 0.3  # 10 classes: chance is 0.1


def test_sweep_prints_a_line_per_trial_a_leaderboard_and_a_report(synthetic_sweep):
    out, lines = synthetic_sweep
    text = "\n".join(lines)
    assert sum("[mmray] trial " in line for line in lines) == 2
    assert "leaderboard" in text and "synthetic-av" in text
    report = out / "report.html"
    assert report.exists() and report.stat().st_size > 1_000_000  # plotly.js is inlined: opens offline
    page = report.read_text()
    assert "Leaderboard" in page and "Learning curves" in page and "Configuration vs metric" in page
    assert "cdn.plot.ly" not in page.split("</script>", 1)[1]  # no figure needs the network


def test_report_rebuilds_from_tables_alone(synthetic_sweep, tmp_path):
    out = api.build_report(synthetic_sweep[0], tmp_path / "again.html")
    assert out.exists() and "mmray sweep: tiny" in out.read_text()


def test_existing_results_are_not_overwritten_silently(synthetic_sweep):
    out, _ = synthetic_sweep
    spec = api.load_spec(out / "sweep.yaml")
    with pytest.raises(Exception, match="--resume"):
        api.run_sweep(spec, results_dir=out, log=lambda *_: None)


@pytest.mark.mirror
def test_a_sweep_whose_every_trial_fails_says_which_error(tmp_path, ray_session):
    spec = _spec(tmp_path, f"""
name: broken
benchmarks:
  - name: synthetic-av
    params: {TINY_SYNTHETIC}
methods: [pavlov]
train: {{epochs: 1, batch_size: 64, probe_examples: 200}}
method_params: {{pavlov: {{encoder_width: 8, hidden_dim: 8, latent_dim: 16}}}}
# hidden_dim 32 would build (so the spec passes); the one trial takes the spec's 8, which cannot
search_space: {{pavlov.hidden_dim: {{choice: [8, 32]}}}}
search: {{num_samples: 1, first_trial: defaults}}
""")
    with pytest.raises(MmrayError, match="no trial reported val/fused_acc .1 of 1 failed.*latent_dim 16 must not "
                                         "exceed hidden_dim 8"):
        api.run_sweep(spec, cache_dir=tmp_path / "cache", results_dir=tmp_path / "results", log=lambda *_: None)
    assert (tmp_path / "results" / schema.TRIALS_FILE).exists()  # the failed trial is recorded all the same


def test_the_trial_an_epoch_budget_stops_is_recorded_with_its_epochs(tmp_path, ray_session):
    """search.max_epochs 3 over 2-epoch trials run one at a time: the first completes, the second is stopped
    by the budget after its first epoch; both are in the tables, nothing is left running."""
    spec = _spec(tmp_path, f"""
name: budget
benchmarks:
  - name: synthetic-av
    params: {TINY_SYNTHETIC}
methods: [pavlov]
train: {{epochs: 2, batch_size: 64, probe_examples: 200}}
method_params: {{pavlov: {{encoder_width: 8, hidden_dim: 32, latent_dim: 16}}}}
search_space:
  train.lr: {{loguniform: [1.0e-3, 3.0e-3]}}
search: {{num_samples: 10, max_epochs: 3}}
scheduler: {{type: none}}
resources: {{max_concurrent_trials: 1}}
""")
    out = api.run_sweep(spec, cache_dir=tmp_path / "cache", results_dir=tmp_path / "results", report=False,
                        log=lambda *_: None)
    results = api.load_results(out)
    trials = results.trials.sort_values(schema.FINISHED_AT)  # one at a time: in the order they ran
    assert list(trials[schema.STATUS]) == [schema.STATUS_COMPLETED, schema.STATUS_STOPPED]
    assert list(trials[schema.EPOCHS_RUN]) == [2, 1] and len(results.epochs) == 3
    assert not (out / "running").exists()


def test_pavlov_learns_real_avmnist_subset(mirror, tmp_path, ray_session):
    spec = _spec(tmp_path, """
name: avmnist-small
benchmarks:
  - name: avmnist
    params: {max_train: 3000, max_eval: 500, n_val_images: 500}
methods: [pavlov]
train: {epochs: 2, batch_size: 64, probe_examples: 1000}
method_params: {pavlov: {encoder_width: 16}}
search: {num_samples: 1}
scheduler: {type: none}
""")
    out = api.run_sweep(spec, mirror=mirror, cache_dir=tmp_path / "cache", results_dir=tmp_path / "results",
                        report=False, log=lambda *_: None)
    row = pd.read_parquet(out / schema.TRIALS_FILE).iloc[0]
    assert row[schema.STATUS] == schema.STATUS_COMPLETED and row[schema.EPOCHS_RUN] == 2
    # chance is 0.1 for ten digits; real MNIST images and FSDD speech must be far above it
    assert row["final/test/image_acc"] > 0.7
    assert row["final/test/audio_acc"] > 0.5
    assert row["final/test/fused_acc"] > 0.75
