"""Data layer: raw sources -> preprocessed Parquet shards + manifest, cached by preprocessing parameters."""

from mmray.data.prepare import prepare
from mmray.data.shards import PreparedData, load_prepared, verify_prepared
from mmray.data.spec import ModalitySpec

__all__ = ["ModalitySpec", "PreparedData", "load_prepared", "prepare", "verify_prepared"]
