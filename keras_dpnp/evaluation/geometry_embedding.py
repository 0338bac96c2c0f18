"""A 2-D t-SNE map of clean features, their adversarial counterparts and the class anchors.

All three are embedded together, so the map shows where attacked features land relative to
the clean clusters and to the prototypes (or class means, for a linear head).
"""

import numpy as np
from sklearn.manifold import TSNE
from threadpoolctl import threadpool_limits

EMBEDDING_POINTS = 250
MAX_PERPLEXITY = 30.0


def tsne_embedding(clean, adversarial, labels, anchors, anchor_classes, *, points, seed=0):
    """2-D coordinates (rounded, JSON-ready) of a seeded subset of `points` clean features,
    the same points' adversarial features (or None) and the anchors [K, d]."""
    labels = np.asarray(labels)
    chosen = np.arange(len(labels))
    if len(chosen) > points:
        chosen = np.sort(np.random.default_rng(seed).choice(len(labels), points, replace=False))
    parts = [clean[chosen]] + ([] if adversarial is None else [adversarial[chosen]]) + [anchors]
    stacked = np.concatenate(parts).astype(np.float64)
    perplexity = min(MAX_PERPLEXITY, (len(stacked) - 1) / 3.0)
    # A few hundred points embed in seconds on one thread; OpenMP threads only contend here.
    with threadpool_limits(limits=1):
        coordinates = TSNE(
            n_components=2, perplexity=perplexity, init="pca", random_state=seed
        ).fit_transform(stacked)
    coordinates = np.round(coordinates, 3)
    count = len(chosen)
    return {
        "method": f"t-SNE (perplexity {perplexity:.3g}, sklearn)",
        "labels": labels[chosen].tolist(),
        "clean": coordinates[:count].tolist(),
        "adversarial": None if adversarial is None else coordinates[count : 2 * count].tolist(),
        "anchors": coordinates[len(stacked) - len(anchors) :].tolist(),
        "anchor_classes": np.asarray(anchor_classes).tolist(),
    }
