"""The benchmark registry: adding a benchmark is one module here plus one line below."""

from mmray.registry import Registry

BENCHMARKS = Registry(
    "benchmark",
    {
        "synthetic-av": "mmray.data.benchmarks.synthetic_av:SyntheticAV",
        "avmnist": "mmray.data.benchmarks.avmnist:AVMNIST",
    },
)
