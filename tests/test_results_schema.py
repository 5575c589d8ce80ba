"""Result column names and directions, and the atomic table writer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmray.results import load, schema
from mmray.results.io import write_table


@pytest.mark.parametrize("column,higher", [
    ("val/fused_acc", True),
    ("test/image_acc", True),
    ("final/test/recall@1_image_to_audio", True),
    ("best/val/map_audio_to_image", True),
    ("val/transfer_image_to_audio", True),
    ("train/loss", False),
    ("train/contrastive", False),
    ("train/orthogonality", False),
    ("train/recon_loss", False),
])
def test_higher_is_better(column, higher):
    assert schema.higher_is_better(column) is higher
    assert schema.metric_info(column) is not None


def test_metric_info_picks_the_specific_entry():
    assert "fused" in schema.metric_info("val/fused_acc").description
    assert "one modality" in schema.metric_info("val/image_acc").description
    assert "K nearest" in schema.metric_info("final/test/recall@1_image_to_audio").description
    assert "loss" in schema.metric_info("train/loss").description


@pytest.mark.parametrize("column", ["val/bogus", "train/lossy", "epoch", "val/recall@k_image_to_audio"])
def test_unknown_metric(column):
    assert schema.metric_info(column) is None
    with pytest.raises(KeyError, match="not a known metric column"):
        schema.higher_is_better(column)
    assert not schema.is_metric_column(column)


def test_is_metric_column():
    assert schema.is_metric_column("val/fused_acc")
    assert schema.is_metric_column("test/recall@5_audio_to_image")
    assert schema.is_metric_column("train/loss")
    assert not schema.is_metric_column("config/method/latent_dim")
    assert not schema.is_metric_column("dev/fused_acc")
    assert not schema.is_metric_column(schema.EPOCH_SECONDS)
    assert schema.config_column("method", "latent_dim") == "config/method/latent_dim"


def frame(n: int = 5, offset: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({
        schema.TRIAL_ID: [f"t{i}" for i in range(n)],
        schema.EPOCH: np.arange(n),
        "val/fused_acc": np.linspace(0.1, 0.9, n) + offset,
        "config/method/latent_dim": [16, 32, 64, 16, 32][:n],
    })


def test_write_table_round_trip(tmp_path):
    path = tmp_path / "deeper" / schema.TRIALS_FILE
    write_table(frame(), path)
    pd.testing.assert_frame_equal(pd.read_parquet(path), frame())
    write_table(frame(3, offset=0.05), path)  # replaces
    pd.testing.assert_frame_equal(pd.read_parquet(path), frame(3, offset=0.05))
    assert sorted(p.name for p in path.parent.iterdir()) == [schema.TRIALS_FILE]  # no temporary left


def test_write_table_failure_keeps_previous_table(tmp_path):
    path = tmp_path / schema.TRIALS_FILE
    write_table(frame(), path)
    bad = pd.DataFrame({"x": [object(), object()]})  # pyarrow cannot store arbitrary objects
    with pytest.raises(Exception):
        write_table(bad, path)
    pd.testing.assert_frame_equal(pd.read_parquet(path), frame())
    assert sorted(p.name for p in tmp_path.iterdir()) == [schema.TRIALS_FILE]


def test_load_results_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="mmray sweep"):
        load(tmp_path)
    write_table(frame(), tmp_path / schema.TRIALS_FILE)
    results = load(tmp_path)
    assert results.epochs.empty and results.config_columns == ["config/method/latent_dim"]
    write_table(frame(), tmp_path / schema.EPOCHS_FILE)
    results = load(tmp_path)
    assert results.metric_columns == ["val/fused_acc"]
