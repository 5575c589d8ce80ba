"""mmray: Ray-distributed experiment sweeps for multimodal representation learning."""

__version__ = "0.1.0"
