"""The figures of the seed presets (sweeps/seeds/) from their results folders: what README's "Seed presets" table
quotes. Each trial's test figures at its best epoch (by the preset's search metric on val), and for
cpc-cifar2-image the same linear probe fit on the raw pixels of the same rows, beside.

    python benchmarks/seed_figures.py --results results --mirror ../shared/datasets
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from cpc_figures import raw_probe

from mmray import api
from mmray.config import SweepSpec
from mmray.data.shards import read_split
from mmray.results import schema

# per preset: the configuration that tells its trials apart, and the test figures the README quotes
FIGURES = {
    "pavlov-avmnist": ("method/latent_dim", ["fused_acc", "image_acc", "audio_acc", "transfer_image_to_audio",
                                             "recall@1_image_to_audio", "pair_recall@1_image_to_audio"]),
    "cpc-sine-audio": ("method/negatives", ["audio_acc", "uniformity_audio"]),
    "cpc-cifar2-image": ("method/negatives", ["image_acc", "uniformity_image"]),
    "cpc-multimodal": ("method/negatives", ["fused_acc", "image_acc", "audio_acc", "alignment_image_audio",
                                            "uniformity_image", "uniformity_audio"]),
    "aecluster-mnist-fsdd": ("method/encoder_width", [f"{score}_{space}" for space in ("image", "audio", "fused")
                                                      for score in ("nmi", "ari", "silhouette")]),
}


def trial_rows(folder: Path, preset: str) -> list[str]:
    """One line per trial: status, epochs, the distinguishing config, the search metric and the test figures."""
    results = api.load_results(folder)
    key, names = FIGURES[preset]
    metric = SweepSpec.model_validate(results.spec).search.metric
    lines = []
    for _, trial in results.trials.iterrows():
        config = trial.get(schema.CONFIG_PREFIX + key)
        figures = ", ".join(f"{name} {trial.get(f'{schema.BEST_PREFIX}test/{name}', np.nan):.4f}" for name in names)
        lines.append(f"{preset} | {key} {config} | {trial[schema.STATUS]} after {trial[schema.EPOCHS_RUN]} epochs | "
                     f"{metric} {trial.get(schema.BEST_PREFIX + metric, np.nan):.4f} | {figures}")
    return lines


def raw_pixel_probe(folder: Path, mirror: str | None) -> float:
    """The evaluation's linear probe on flattened raw pixels: fit on the probe rows (the first probe_examples of
    the training split, as a trial's probe), scored on the test split."""
    spec = SweepSpec.model_validate(api.load_results(folder).spec)
    entry = spec.benchmarks[0]
    prepared = api.prepare(entry.name, entry.params, mirror=mirror)
    train = read_split(prepared, "train", spec.train_params.probe_examples)
    test = read_split(prepared, "test", spec.train_params.eval_examples)
    return raw_probe(train, test, ["image"])["image"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="results", help="folder holding results/<preset>/")
    parser.add_argument("--mirror", default=None, help="data mirror, for the raw-pixel probe's shards")
    args = parser.parse_args()
    for preset in FIGURES:
        folder = Path(args.results) / preset
        if not (folder / "trials.parquet").exists():
            print(f"{preset} | no results in {folder}")
            continue
        print("\n".join(trial_rows(folder, preset)))
        if preset == "cpc-cifar2-image":
            print(f"{preset} | raw-pixel probe, test accuracy {raw_pixel_probe(folder, args.mirror):.4f}")


if __name__ == "__main__":
    main()
