"""FIND detection engine: frames, faces, classifier, ensemble, video scoring, training."""
