"""Data augmentation in training: knobs (params.py, torch-free), pure tensor functions (ops.py) and the
per-trial augmenter the epoch loop applies to training batches (augmenter.py)."""
