"""t-SNE (scikit-learn) of embeddings, for Figures 5 and 6."""
from __future__ import annotations

import numpy as np
import pandas as pd


def subsample(n: int, max_points: int, labels=None, seed: int = 0) -> np.ndarray:
    """Indices of at most ``max_points`` of ``n`` rows, drawn evenly from each label if given."""
    rng = np.random.default_rng(seed)
    if n <= max_points:
        return np.arange(n)
    if labels is None:
        return np.sort(rng.choice(n, max_points, replace=False))
    labels = np.asarray(labels)
    groups = [np.flatnonzero(labels == v) for v in np.unique(labels)]
    per = max_points // len(groups)
    return np.sort(np.concatenate([rng.choice(g, min(per, len(g)), replace=False) for g in groups]))


def tsne_2d(x, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """2-D t-SNE coordinates of the rows of ``x`` (perplexity capped for small sets)."""
    from sklearn.manifold import TSNE

    x = np.asarray(x, dtype=np.float32)
    if len(x) < 5:
        raise ValueError(f"t-SNE needs at least 5 points, got {len(x)}")
    perplexity = min(perplexity, (len(x) - 1) / 3)
    return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)


def tsne_panels(panels: dict, labels, seed: int = 0) -> pd.DataFrame:
    """``{panel title: embeddings}`` (same rows, same ``labels``) -> table ``panel, x, y, label``."""
    tables = []
    for title, x in panels.items():
        xy = tsne_2d(x, seed)
        tables.append(pd.DataFrame({"panel": title, "x": xy[:, 0], "y": xy[:, 1], "label": np.asarray(labels)}))
    return pd.concat(tables, ignore_index=True)
