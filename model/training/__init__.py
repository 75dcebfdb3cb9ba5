"""Training and evaluation: datasets, crop cache, augmentations, SBI, training, metrics.

Builds and measures the bundles that the engine (:mod:`model`) loads. Nothing in the
engine or the daemon imports from here (tests/test_layout.py); ``find-bot train`` and
``find-bot evaluate`` import it inside their handlers.
"""
