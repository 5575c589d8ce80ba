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
    ("train/decoder_image", False),  # any term a method's losses() returns
    ("final/train/align", False),
    ("val/pair_recall@10_image_to_audio", True),
    ("best/test/pair_map_audio_to_image", True),
    ("val/alignment_image_audio", False),
    ("val/uniformity_fused", False),
    ("val/silhouette_image", True),
    ("val/nmi_fused", True),
    ("val/ari_audio", True),
    ("val/fused_acc_without_audio", True),
    ("val/fused_acc_drop25_image", True),
    ("test/bleu_caption", True),
    ("test/exact_match_yesno_answer", True),
    ("test/token_acc_open_answer", True),
    ("test/ssim_image_to_audio", True),
    ("test/ssim_caption_to_image", True),
    ("test/ssim_image", True),  # results written before the translations
])
def test_higher_is_better(column, higher):
    assert schema.higher_is_better(column) is higher
    assert schema.metric_info(column) is not None


def test_metric_info_picks_the_specific_entry():
    assert "fused" in schema.metric_info("val/fused_acc").description
    assert "one modality" in schema.metric_info("val/image_acc").description
    assert "K nearest" in schema.metric_info("final/test/recall@1_image_to_audio").description
    assert "own pair" in schema.metric_info("final/test/pair_recall@1_image_to_audio").description
    assert "absent" in schema.metric_info("val/fused_acc_without_audio").description
    assert "word by word" in schema.metric_info("val/token_acc_yesno_answer").description
    assert "loss" in schema.metric_info("train/loss").description
    assert "cross-modal" in schema.metric_info("val/ssim_image_to_audio").description
    assert "written before" in schema.metric_info("val/ssim_image").description  # older results still read


# Every metric family of the suite as a name template, and words its description must hold: no name may fall
# into a more general entry (e.g. "fused_acc_without_audio" into "<m>_acc").
FAMILIES = {
    "{m}_acc": "one modality", "fused_acc": "fused embedding", "transfer_{a}_to_{b}": "probe fit",
    "{recall}_{a}_to_{b}": "same-label", "map_{a}_to_{b}": "by label",
    "pair_{recall}_{a}_to_{b}": "own pair", "pair_map_{a}_to_{b}": "own pair",
    "alignment_image_audio": "Wang & Isola", "uniformity_{space}": "Wang & Isola",
    "silhouette_{space}": "silhouette", "nmi_{space}": "mutual information", "ari_{space}": "Rand",
    "fused_acc_without_{m}": "absent", "fused_acc_drop{percent}_{m}": "robustness curve",
    "bleu_answer": "BLEU", "exact_match{subset}_answer": "equal to the reference",
    "token_acc{subset}_answer": "word by word", "ssim_audio_to_image": "structural similarity",
    "ssim_image_to_image": "same-modal",
}
VALUES = {"m": ("image", "audio"), "space": ("image", "audio", "fused"), "percent": (0, 25, 50, 75, 100),
          "recall": ("recall@1", "recall@5", "recall@10"), "subset": ("", "_yesno", "_open"),
          "ab": (("image", "audio"), ("audio", "image"))}


def _expand(template: str) -> list[str]:
    names = [template]
    for key in ("m", "space", "percent", "recall", "subset"):
        if "{" + key + "}" in template:
            names = [n.replace("{" + key + "}", str(v)) for n in names for v in VALUES[key]]
    if "{a}" in template:
        names = [n.format(a=a, b=b) for n in names for a, b in VALUES["ab"]]
    return names


def test_every_metric_the_suite_emits_has_a_direction_and_its_own_entry():
    from test_metrics import full_results  # the suite on inputs that exercise every metric

    expected = {name: words for template, words in FAMILIES.items() for name in _expand(template)}
    emitted = full_results()
    assert set(emitted) == set(expected)
    for name, words in expected.items():
        for split in schema.SPLITS:
            assert schema.is_metric_column(f"{split}/{name}"), name
            assert isinstance(schema.higher_is_better(f"{schema.FINAL_PREFIX}{split}/{name}"), bool), name
        assert words in schema.metric_info(name).description, name


@pytest.mark.parametrize("column", ["val/bogus", "train/", "epoch", "val/recall@k_image_to_audio"])
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
