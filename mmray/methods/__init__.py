"""The method registry: adding a method is one package here (its card and its model) plus one line below.

The registry holds each method's card (mmray.methods.card), which imports no torch; `card.model_class()` is the
nn.Module."""

from mmray.registry import Registry

METHODS = Registry(
    "method",
    {
        "pavlov": "mmray.methods.pavlov.card:PavlovCard",
        "aecluster": "mmray.methods.aecluster.card:AEClusterCard",
        "cpc": "mmray.methods.cpc.card:CPCCard",
        "jepa": "mmray.methods.jepa.card:JepaCard",
        "fusion": "mmray.methods.fusion.card:FusionCard",
    },
)
