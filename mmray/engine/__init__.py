"""The training engine: one epoch loop (train a pass, evaluate, hand the epoch over) that a Ray worker and the
in-process `fit_local` both drive, the batches it trains on and the evaluation it runs. Plain PyTorch; no Ray.

    params.py      TrainParams: the optimisation knobs a sweep may search as train.<field>
    training.py    build a method, shape a batch, one training pass, embed
    batching.py    batches from columns held in memory
    evaluation.py  one epoch's evaluation (every metric) and the trial's pictures
    loop.py        EpochLoop: the loop itself, with the state a checkpoint keeps
    local.py       fit_local: a trial in this process, without Ray
"""
