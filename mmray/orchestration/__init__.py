"""The only package that imports ray.tune / ray.train: worker loop, trial trainable, sweep driver."""
