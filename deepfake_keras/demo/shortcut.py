"""The shortcut check: can a model that never looks at the face tell the DEMO fakes apart (file
size, bitrate, mean colour, frame count)? A build warns when it can (AUC above :data:`SHORTCUT_LIMIT`)."""
from __future__ import annotations

import pandas as pd

SHORTCUT_LIMIT = 0.65

SHORTCUT_FEATURES = {"file size": ["size"], "bitrate": ["bitrate"], "mean colour": ["mean_r", "mean_g", "mean_b"],
                     "frame count": ["frames"], "all of them": ["size", "bitrate", "mean_r", "mean_g", "mean_b",
                                                                "frames"]}


def shortcut_aucs(table: pd.DataFrame) -> dict:
    """AUC on the test split of a logistic regression trained on the train split with features
    that ignore the face (:data:`SHORTCUT_FEATURES`), for each comparison: FF++ per compression,
    all fakes and each method against the originals; Celeb-DF all fakes against all reals.

    ``table`` has one row per video: ``dataset``, ``compression``, ``method``, ``split``,
    ``label`` and the :func:`video_features` columns. Returns ``{comparison: {feature set: AUC}}``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    comparisons = {}
    for (dataset, comp), part in table.groupby(["dataset", "compression"], sort=True):
        name = f"{dataset} {comp}".strip()
        methods = sorted(m for m in part.loc[part["label"] == 1, "method"].unique())
        comparisons[f"{name}: all fakes"] = part
        if dataset == "ffpp":
            for m in methods:
                comparisons[f"{name}: {m}"] = part[(part["label"] == 0) | (part["method"] == m)]
    out = {}
    for name, part in comparisons.items():
        train, test = part[part["split"] == "train"], part[part["split"] == "test"]
        out[name] = {}
        for feat_name, cols in SHORTCUT_FEATURES.items():
            x_train, x_test = train[cols].to_numpy(float), test[cols].to_numpy(float)
            keep = x_train.std(0) > 0
            if not keep.any() or train["label"].nunique() < 2 or test["label"].nunique() < 2:
                out[name][feat_name] = 0.5
                continue
            model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
            model.fit(x_train[:, keep], train["label"])
            out[name][feat_name] = round(float(roc_auc_score(test["label"],
                                                             model.predict_proba(x_test[:, keep])[:, 1])), 3)
    return out


def shortcut_table(aucs: dict) -> str:
    """The AUCs of :func:`shortcut_aucs` as a Markdown table."""
    feats = list(SHORTCUT_FEATURES)
    lines = ["| DEMO comparison (test split) | " + " | ".join(feats) + " |",
             "| --- | " + " | ".join("---:" for _ in feats) + " |"]
    for name, row in aucs.items():
        lines.append(f"| {name} | " + " | ".join(f"{row[f]:.3f}" for f in feats) + " |")
    return "\n".join(lines)

