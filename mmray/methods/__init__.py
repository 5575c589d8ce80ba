"""The method registry: adding a method is one module here plus one line below."""

from mmray.registry import Registry

METHODS = Registry(
    "method",
    {
        "pavlov": "mmray.methods.pavlov:Pavlov",
        "jepa": "mmray.methods.jepa:Jepa",
    },
)
