"""FIND detection engine: frames, faces, tracks, classifier, ensemble, bundle, video scoring.

Training and evaluation live in :mod:`model.training`; the engine never imports from it
(tests/test_layout.py holds that line), so the daemon and ``find-bot scan`` load
only what scoring a video needs.
"""
