"""The benchmark registry: adding a benchmark is one module here plus one line below."""

from mmray.registry import Registry

BENCHMARKS = Registry(
    "benchmark",
    {
        "synthetic-av": "mmray.data.benchmarks.synthetic_av:SyntheticAV",
        "avmnist": "mmray.data.benchmarks.avmnist:AVMNIST",
        "sine": "mmray.data.benchmarks.sine:Sine",
        "cifar2-audio": "mmray.data.benchmarks.cifar2_audio:Cifar2Audio",
        "pathvqa": "mmray.data.benchmarks.pathvqa:PathVQA",
        "mnist-captions": "mmray.data.benchmarks.captions:MNISTCaptions",
        "animal-faces": "mmray.data.benchmarks.captions:AnimalFaces",
        "cremad": "mmray.data.benchmarks.cremad:CremaD",
    },
)
