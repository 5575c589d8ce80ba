"""From a sweep to a model in hand: every trial keeps its best epoch as an exported model (format.py), which
loads with no Ray, results folder or network (load.py), evaluates on any benchmark it fits (evaluate.py), and
embeds new raw files through the benchmark's own preprocessing.

    from mmray import load_model
    model = load_model("models/pavlov-avmnist")          # or load_model("results/avmnist-pavlov", trial="best")
    out = model.embed(audio=["a.wav"], image=["seven.png"])
"""

from mmray.models.load import TrainedModel, load_model

__all__ = ["TrainedModel", "load_model"]
