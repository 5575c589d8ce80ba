"""mmray: Ray-distributed experiment sweeps for multimodal representation learning."""

__version__ = "0.1.0"


def __getattr__(name: str):
    # `from mmray import load_model` without making `import mmray` (the CLI's first step) import torch
    if name == "load_model":
        from mmray.models import load_model

        return load_model
    raise AttributeError(f"module 'mmray' has no attribute {name!r}")
