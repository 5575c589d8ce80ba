"""The method registry: adding a method is one module here plus one line below."""

from mmray.registry import Registry

METHODS = Registry(
    "method",
    {
        "pavlov": "mmray.methods.pavlov:Pavlov",
        "aecluster": "mmray.methods.aecluster:AECluster",
        "cpc": "mmray.methods.cpc:CPC",
        "jepa": "mmray.methods.jepa:Jepa",
        "fusion": "mmray.methods.fusion:Fusion",
    },
)
