"""Saved results -> tables beside the paper's numbers, and figures.

Nothing here trains: every function reads what an experiment saved
(``metrics.json``, ``predictions.csv``, ``tsne.csv``), so tables and figures
can be redrawn without retraining (``deepfake-keras report RUN_DIR``).
Numbers in tables are percentages, as in the paper; the paper's numbers are
marked as reported by the paper, ours as measured.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from .io import write_csv

# ---------------------------------------------------------------- the paper's numbers (percent)

PAPER_TABLE_1 = [  # AUC on Celeb-DF; the first rows are prior methods as reported in the paper (from Celeb-DF's paper)
    ("MesoInception4", 53.6), ("Two-Stream", 53.8), ("Muti-task", 54.3), ("HeadPose", 54.6), ("Meso-4", 54.8),
    ("VA-MLP", 55.0), ("VA-LogReg", 55.1), ("FWA", 56.9), ("Capsule", 57.5), ("DSP-FWA", 64.6), ("Xception", 65.5),
    ("Ours (Frames only)", 99.2), ("Ours (Triplets)", 99.7),
]
PAPER_TABLE_2 = [  # accuracy on FF++ c40
    ("Frames only", 49.82), ("3d Convolution", 43.47), ("Frames + LSTM/GRU", 55.8), ("Triplets (Semi-hard)", 86.74),
]
PAPER_TABLE_3 = {  # semi-hard triplets, FF++ c40 NeuralTextures vs pristine
    "Triplets + RF": {"P": 89.84, "R": 82.73, "F1": 86.14, "AUC": 92.85, "EER": 12.14},
    "Triplets + SGD": {"P": 90.55, "R": 82.74, "F1": 86.47, "AUC": 92.9, "EER": 10.07},
}
PAPER_TABLE_4 = [  # per-class accuracy: NeuralTextures, pristine
    ("Steg. Features + SVM", 55.84, 56.94), ("Cozzolino et al.", 62.15, 56.27), ("Bayar and Stamm", 74.36, 53.87),
    ("Rahmouni et al.", 59.99, 56.79), ("MesoNet", 44.81, 77.58), ("XceptionNet", 78.06, 75.27), ("Ours", 90.71, 82.73),
]
PAPER = "reported by the paper"
MEASURED = "measured (this run)"
DEMO_NOTE = " DEMO data: 5 real people in synthetic clips; this shows the pipeline working, not the paper's numbers."


def pct(x):
    """A fraction as a percentage rounded to 2 decimals (NaN stays NaN); a ``(mean, sd)`` pair over the folds
    of a cross-validation as the text ``"mean ± sd"``."""
    if isinstance(x, tuple):
        return f"{100 * x[0]:.2f} ± {100 * x[1]:.2f}"
    return None if x is None or (isinstance(x, float) and np.isnan(x)) else round(100 * float(x), 2)


def title_of(text: str, demo: bool) -> str:
    return f"DEMO data: {text}" if demo else text


# ---------------------------------------------------------------- tables

def markdown(df: pd.DataFrame) -> str:
    """A pipe table (no extra dependency)."""
    def cell(v):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return ""
        return f"{v:.2f}" if isinstance(v, float) else str(v)

    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in df.columns) + " |"
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def write_table(df: pd.DataFrame, out_dir, name: str, title: str, notes: str = "") -> Path:
    """``<name>.md`` (title, pipe table, notes) and its CSV twin ``<name>.csv``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = f"# {title}\n\n{markdown(df)}\n"
    if notes:
        text += f"\n{notes.strip()}\n"
    (out_dir / f"{name}.md").write_text(text)
    write_csv(out_dir / f"{name}.csv", df)
    return out_dir / f"{name}.md"


def table_1(measured: dict) -> pd.DataFrame:
    """Celeb-DF AUC: the paper's rows, then ours. ``measured``: row name -> AUC fraction."""
    rows = [(m, auc, PAPER) for m, auc in PAPER_TABLE_1]
    rows += [(f"{name} [this run]", pct(auc), MEASURED) for name, auc in measured.items()]
    return pd.DataFrame(rows, columns=["Method", "AUC (%)", "Source"])


def table_2(measured: dict) -> pd.DataFrame:
    """FF++ c40 accuracy: each paper row beside ours. ``measured``: row name -> accuracy fraction;
    names not in the paper's table are appended as our extra rows."""
    paper = dict(PAPER_TABLE_2)
    names = [m for m, _ in PAPER_TABLE_2] + [m for m in measured if m not in paper]
    rows = [(m, paper.get(m), pct(measured.get(m)), "paper row" if m in paper else "ours (not in the paper)")
            for m in names]
    return pd.DataFrame(rows, columns=["Model", "Paper accuracy (%)", "Measured accuracy (%)", "Row"])


def table_3(measured: dict) -> pd.DataFrame:
    """P/R/F1/AUC/EER with **pristine as the positive class**, as the paper computed them (its Table III
    works out exactly so; see :func:`deepfake_keras.evaluation.binary_metrics`). ``measured``: row name
    -> metrics dict (fractions, as from :func:`evaluation.binary_metrics`)."""
    rows = []
    for name in list(PAPER_TABLE_3) + [m for m in measured if m not in PAPER_TABLE_3]:
        if name in PAPER_TABLE_3:
            rows.append([name, PAPER, *PAPER_TABLE_3[name].values()])
        if name in measured:
            m = measured[name]
            rows.append([name, MEASURED, pct(m["precision_real"]), pct(m["recall_real"]), pct(m["f1_real"]),
                         pct(m["auc"]), pct(m["eer"])])
    return pd.DataFrame(rows, columns=["Model", "Source", "P", "R", "F1", "AUC", "EER"])


def table_4(measured: dict, methods=("NeuralTextures",)) -> pd.DataFrame:
    """Per-class accuracy: the fakes of each method and pristine. ``measured``: row name -> ``{method:
    accuracy on its fakes, ..., "pristine": accuracy on the reals}``; the paper's rows (NeuralTextures and
    pristine) fill the NeuralTextures column."""
    columns = [f"{m} (%)" for m in methods]
    rows = [(name, *[nt if m == "NeuralTextures" else None for m in methods], pr, PAPER)
            for name, nt, pr in PAPER_TABLE_4]
    rows += [(f"{name} [this run]", *[pct(acc.get(m)) for m in methods], pct(acc["pristine"]), MEASURED)
             for name, acc in measured.items()]
    return pd.DataFrame(rows, columns=["Model", *columns, "Pristine (%)", "Source"])


# ---------------------------------------------------------------- figures

def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path) -> Path:
    """PNG (and a PDF twin) at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    fig.savefig(path.with_suffix(".pdf"), bbox_inches="tight")
    _pyplot().close(fig)
    return path


def plot_roc(predictions: pd.DataFrame, curves: dict, path, title: str, per_fold: str | None = None) -> Path:
    """ROC curves from a predictions table: ``curves`` maps a legend name to a score column;
    ``label`` holds 1 = fake. With ``per_fold`` (a score column) and a ``fold`` column, that model's ROC of
    every fold is drawn too, thin, beside the pooled curves."""
    from .evaluation import roc_points
    from sklearn.metrics import roc_auc_score

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    if per_fold and "fold" in predictions:
        for fold, rows in predictions.dropna(subset=[per_fold]).groupby("fold"):
            if rows["label"].nunique() < 2:  # no ROC from one class
                continue
            roc = roc_points(rows["label"], rows[per_fold])
            ax.plot(roc["fpr"], roc["tpr"], lw=0.7, alpha=0.5, color="grey",
                    label=f"fold {int(fold) + 1} (AUC {100 * roc_auc_score(rows['label'], rows[per_fold]):.1f})")
    for name, col in curves.items():
        rows = predictions.dropna(subset=[col])
        roc = roc_points(rows["label"], rows[col])
        auc = roc_auc_score(rows["label"], rows[col])
        pooled = " pooled" if per_fold and "fold" in predictions else ""
        ax.plot(roc["fpr"], roc["tpr"], label=f"{name}{pooled} (AUC {100 * auc:.1f})")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set(xlabel="False positive rate (real called fake)", ylabel="True positive rate (fake called fake)",
           title=title, xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, path)


def plot_tsne(points: pd.DataFrame, path, title: str) -> Path:
    """One panel per value of ``panel`` in a table with ``panel, x, y, label`` (1 = fake), in the
    order the panels first appear."""
    plt = _pyplot()
    panels = list(dict.fromkeys(points["panel"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        rows = points[points["panel"] == panel]
        for label, colour, name in ((0, "tab:blue", "real"), (1, "tab:red", "fake")):
            sel = rows[rows["label"] == label]
            ax.scatter(sel["x"], sel["y"], s=6, c=colour, alpha=0.6, label=name, linewidths=0)
        ax.set_title(panel, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][0].legend(loc="best", fontsize=8)
    fig.suptitle(title)
    return save_figure(fig, path)


def load_json(path) -> dict:
    return json.loads(Path(path).read_text())


# ---------------------------------------------------------------- per experiment: saved results -> tables, figures

def measured_by(metrics: dict):
    """``value(model, metric)``: the test videos' metric of a run, as a fraction, or over the folds of a
    cross-validation as ``(mean, sd)`` (:func:`pct` prints it ``mean ± sd``)."""
    cv = metrics.get("cv")
    if cv:
        return lambda model, metric: (None if cv["mean"][model].get(metric) is None
                                      else (cv["mean"][model][metric], cv["sd"][model][metric]))
    return lambda model, metric: metrics["test"][model]["video"].get(metric)


def no_face_note(metrics: dict) -> str:
    counts = metrics.get("counts", {})
    n = counts.get("test_videos_no_face", 0)
    if counts.get("no_face_score") is not None:
        return f" {n} test video(s) had no face and were scored {counts['no_face_score']:g} (the run's no-face score)."
    return f" {n} test video(s) had no face and were left out." if n else " Every test video had a face."


def _report_ffpp_triplet(run_dir: Path, config: dict, metrics: dict) -> list:
    demo = config.get("demo", False)
    value = measured_by(metrics)
    names = metrics["models"]
    cv = metrics.get("cv")
    how = (f"{cv['k']}-fold CV by pair (each video tested once; mean ± sd over the folds)" if cv
           else "test split")
    rule = {"majority": "the majority of its frames (the authors')", "mean": "its mean frame probability"}
    note = (f"Measured: FF++ {config['compression']} {'+'.join(config['methods'])} vs pristine, {how}, video "
            f"level (a video is called by {rule[metrics.get('video_decision', 'mean')]}; AUC and EER from the mean "
            f"probability), FaceNet {config['facenet']['used']}.{no_face_note(metrics)} The paper's rows are as it "
            f"reports them.")
    if demo:
        note += DEMO_NOTE
    out = []
    rows = {"Triplets (Semi-hard)": "triplet_rf", names["triplet_sgd"]: "triplet_sgd",
            "Triplets (random pick) + RF": "random_rf", names["facenet_sgd"]: "facenet_sgd", names["dense"]: "dense",
            **{names[k]: k for k in ("facenet_std_sgd", "video_stats_lr", "video_geometry_lr") if k in names}}
    t2 = table_2({name: value(key, "accuracy") for name, key in rows.items()})
    out.append(write_table(t2, run_dir, "table_2", title_of("Table II: FaceForensics++ accuracy", demo),
                           note + " The paper's triplet row (86.74 = 242 of 279 videos) is Triplets + RF, as here; "
                                  "SGD beside it. The other paper rows come from ffpp_baselines."))
    table_3_rows = {"Triplets + RF": "triplet_rf", "Triplets + SGD": "triplet_sgd",
                    "Triplets (random pick) + RF": "random_rf", "Triplets (random pick) + SGD": "random_sgd",
                    names["facenet_sgd"]: "facenet_sgd",
                    **{names[k]: k for k in ("facenet_std_sgd", "video_stats_lr", "video_geometry_lr") if k in names}}
    t3 = table_3({name: {m: value(key, m) for m in ("precision_real", "recall_real", "f1_real", "auc", "eer")}
                  for name, key in table_3_rows.items()})
    out.append(write_table(t3, run_dir, "table_3", title_of("Table III: semi-hard triplets, P/R/F1/AUC/EER (%)", demo),
                           note + " P, R and F1 take pristine as the positive class, as the paper's do (its numbers "
                                  "work out exactly so); metrics.json also holds them with fake as the positive "
                                  "class (precision_fake, recall_fake, f1_fake)."))
    methods = list(config["methods"])
    per_method = metrics.get("per_method", {})
    t4 = table_4({name: {**per_method.get(key, {}), "pristine": value(key, "acc_real")}
                  for name, key in (("Triplets + RF", "triplet_rf"), ("Triplets + SGD", "triplet_sgd"))}, methods)
    out.append(write_table(t4, run_dir, "table_4", title_of("Table IV: per-class accuracy (%)", demo),
                           note + " Per-method columns: accuracy on that method's fake videos"
                           + (" (pooled over the folds)" if cv else "") + "."))
    predictions = pd.read_csv(run_dir / "predictions.csv")
    test_videos = predictions[predictions["split"] == "test"]
    curves = {names[k]: k for k in ("triplet_rf", "triplet_sgd", "facenet_sgd", "dense")}
    out.append(plot_roc(test_videos, curves, run_dir / "fig_7_roc.png",
                        title_of("Fig. 7: ROC, triplets vs no triplets (video level)", demo),
                        per_fold="triplet_rf" if cv else None))
    out.append(plot_tsne(pd.read_csv(run_dir / "tsne.csv"), run_dir / "fig_6_tsne.png",
                         title_of("Fig. 6: t-SNE of FF++ test faces", demo)))
    return out


def plot_gradcam(saved, path, title: str) -> Path:
    """Faces (top row) and their Grad-CAM overlays (bottom row) from a ``gradcam.npz``; each face's title
    gives its true class, P(fake) and the class its map explains (with the P(fake) of the model drawn, where
    that is not the one scored)."""
    plt = _pyplot()
    n = len(saved["faces"])
    fig, axes = plt.subplots(2, n, figsize=(2.2 * n, 4.8), squeeze=False)
    for i in range(n):
        name = "fake" if saved["labels"][i] == 1 else "real"
        explains = f"\nmap explains: {saved['targets'][i]}" if "targets" in saved else ""
        if "bag0_scores" in saved:
            explains += f" (bag 0: {saved['bag0_scores'][i]:.2f})"
        axes[0][i].imshow(saved["faces"][i])
        axes[0][i].set_title(f"{name}, P(fake) {saved['scores'][i]:.2f}{explains}", fontsize=8)
        axes[1][i].imshow(saved["overlays"][i])
        for ax in (axes[0][i], axes[1][i]):
            ax.axis("off")
    fig.suptitle(title)
    return save_figure(fig, path)


def _report_celebdf(run_dir: Path, config: dict, metrics: dict) -> list:
    demo = config.get("demo", False)
    test = metrics["test"]
    note = (f"Measured: Celeb-DF test videos, {config['bags']} Xception bags ({config['image_size']} px, "
            f"{config['epochs']} epochs, start {config['xception_weights']['used']}), mean probability of the bags; "
            f"triplets: FaceNet {config['facenet']['used']} + semi-hard triplet head + SGD, video score = mean of "
            f"its frames.{no_face_note(metrics)} The other rows are as the paper reports them.")
    if demo:
        note += DEMO_NOTE
    out = [write_table(table_1({"Ours (Frames only)": test["mean_prob"]["video"]["auc"],
                                "Ours (Triplets)": test["triplet_sgd"]["video"]["auc"]}),
                       run_dir, "table_1", title_of("Table I: AUC on Celeb-DF", demo), note)]
    predictions = pd.read_csv(run_dir / "predictions.csv")
    out.append(plot_roc(predictions, {"Frames only (7 bags, mean probability)": "mean_prob",
                                      "Triplets + SGD": "triplet_sgd", "Triplets + RF": "triplet_rf"},
                        run_dir / "fig_7_roc.png", title_of("Fig. 7: ROC on Celeb-DF test videos", demo)))
    with np.load(run_dir / "gradcam.npz") as saved:
        out.append(plot_gradcam(saved, run_dir / "fig_4_gradcam.png",
                                title_of("Fig. 4: Grad-CAM of Xception (bag 0) on Celeb-DF test faces, of the predicted class", demo)))
    out.append(plot_tsne(pd.read_csv(run_dir / "tsne.csv"), run_dir / "fig_5_tsne.png",
                         title_of("Fig. 5: Celeb-DF test faces, t-SNE before and after training", demo)))
    return out


def _report_ffpp_baselines(run_dir: Path, config: dict, metrics: dict) -> list:
    """Table II with the paper's four rows (the triplet row from the triplet run), the ConvLSTM row
    (ours) and every LSTM/GRU variant; ROC of the baselines on the test videos."""
    demo = config.get("demo", False)
    value = measured_by(metrics)
    cv = metrics.get("cv")
    names = metrics["models"]
    selected = metrics["selected_recurrent"]
    triplet = metrics.get("triplet", {})
    triplet_accuracy = (tuple(triplet["cv"]["accuracy"]) if cv and triplet.get("cv") else triplet.get("accuracy"))
    measured = {"Frames only": value("frames_only", "accuracy"), "3d Convolution": value("conv3d", "accuracy"),
                "Frames + LSTM/GRU": value("lstm_gru", "accuracy"), "Triplets (Semi-hard)": triplet_accuracy,
                "ConvLSTM (ours, not in the paper)": value("convlstm", "accuracy")}
    variants = {}
    for n in config["seq_lens"]:
        for kind in config["kinds"]:
            key = f"{kind}_{n}"
            variants[names[key] + (" (selected)" if key == selected else "")] = value(key, "accuracy")
    t2 = table_2({**measured, **variants})
    t2.loc[t2["Model"].isin(list(variants)), "Row"] = "variant of Frames + LSTM/GRU"
    if triplet.get("source") == "skipped":
        triplet_note = "Triplet row: not measured in this run (no triplet run asked for)."
    else:
        triplet_note = (f"Triplet row: semi-hard triplets + RF of the ffpp_triplet run "
                        f"{Path(triplet.get('run_dir', '')).name or triplet.get('run_dir')} "
                        f"({'run by this experiment' if triplet.get('source') == 'ran' else 'given'}).")
        if triplet.get("mismatch"):
            triplet_note += f" That run differs from this one in: {', '.join(triplet['mismatch'])}."
    seq = metrics.get("sequences", {})
    padded = sum(v.get("padded_videos", 0) for v in seq.values())
    dropped = sum(v.get("dropped_videos", 0) for v in seq.values())
    how = (f"{cv['k']}-fold CV by pair (each video tested once; mean ± sd over the folds, the LSTM/GRU row "
           f"selected in each fold)" if cv else "test split")
    note = (f"Measured: FF++ {config['compression']} {'+'.join(config['methods'])} vs pristine, {how}, video "
            f"accuracy at P(fake) >= 0.5. Frames only: Xception ({config['image_size']} px, start "
            f"{config['xception_weights']['used']}, at most {config['epochs']} epoch{'s' if config['epochs'] != 1 else ''}), "
            f"mean over the video's frames (batch-norm statistics recomputed on its training frames). "
            f"LSTM/GRU: 32 units on the 512-d fc1 features of that Xception; the paper row is {names['lstm_gru']}, "
            f"the best validation accuracy of the variants listed. Conv3D and ConvLSTM: clips of "
            f"{config['clip_frames']} consecutive faces at {config['clip_size']} px, from scratch (Nadam "
            f"{config.get('conv_learning_rate', 'n/a')}). Short videos: "
            f"{config['short']} ({padded} padded, {dropped} dropped sequences over all models). {triplet_note}"
            f"{no_face_note(metrics)} The paper's numbers are as it reports them.")
    if demo:
        note += DEMO_NOTE
    out = [write_table(t2, run_dir, "table_2", title_of("Table II: FaceForensics++ accuracy, baselines", demo), note)]
    predictions = pd.read_csv(run_dir / "predictions.csv")
    test = predictions[predictions["split"] == "test"]
    curves = {}
    for name, col in (("Frames only", "frames_only"), (f"Frames + {selected}", "lstm_gru"), ("Conv3D", "conv3d"),
                      ("ConvLSTM (ours)", "convlstm")):
        if col in test and test.dropna(subset=[col])["label"].nunique() == 2:
            curves[name] = col
    if curves:
        out.append(plot_roc(test, curves, run_dir / "fig_roc_baselines.png",
                            title_of("ROC of the FF++ baselines (test videos)", demo),
                            per_fold="frames_only" if cv else None))
    return out


def _report_evaluate(run_dir: Path, config: dict, metrics: dict) -> list:
    """``table.md`` (the bundle on this dataset: video and frame metrics, per-method accuracy) and ``roc.png``."""
    bundle = config["bundle"]
    name = f"{config['dataset']} {Path(config['root']).name} ({config['split']})"
    counts = metrics["counts"]
    video, frame = metrics.get("video", {}), metrics.get("frame", {})
    rows = [(level, pct(m.get("auc")), pct(m.get("accuracy")), pct(m.get("precision_fake")), pct(m.get("recall_fake")),
             pct(m.get("precision_real")), pct(m.get("recall_real")), pct(m.get("eer")))
            for level, m in (("video", video), ("frame", frame)) if m]
    table = pd.DataFrame(rows, columns=["Level", "AUC", "Accuracy", "P (fake)", "R (fake)", "P (pristine)",
                                        "R (pristine)", "EER"])
    demo = " This model was trained on DEMO data: its verdicts mean nothing on real footage." if bundle.get(
        "demo_model", bundle.get("demo")) else ""
    note = (f"Model: {bundle.get('description') or bundle['kind']} ({bundle['path']}), threshold "
            f"{bundle['threshold']:.4g} ({bundle.get('threshold_source', 'fixed')}), {bundle['decision']} decision. {counts['scored']} of {counts['videos']} videos "
            f"scored ({counts['real']} real, {counts['fake']} fake); {counts['no_face']} with no face and "
            f"{counts['failed']} unreadable left out (listed in predictions.csv). Per method, accuracy on its fakes: "
            + ", ".join(f"{m} {pct(a)}" for m, a in metrics.get("per_method", {}).items() if a is not None) + "." + demo)
    out = [write_table(table, run_dir, "table", f"Evaluation on {name}", note)]
    predictions = pd.read_csv(run_dir / "predictions.csv")
    scored = predictions[predictions["status"] == "scored"]
    if scored["label"].nunique() == 2:
        out.append(plot_roc(scored, {bundle.get("model") or bundle["kind"]: "score"}, run_dir / "roc.png",
                            f"ROC on {name}"))
    return out


def cross_table(run_dirs, out_dir=None) -> tuple:
    """Several evaluations side by side, the DeepfakeBench way: one row per model, one column per dataset,
    video AUC (%) in the cells. Returns ``(table, path of cross.md or None)``."""
    cells = {}
    for run_dir in run_dirs:
        run_dir = Path(run_dir)
        for name in ("config.json", "metrics.json"):
            if not (run_dir / name).is_file():
                raise FileNotFoundError(f"{run_dir / name} not found: {run_dir} is not a finished evaluation")
        config, metrics = load_json(run_dir / "config.json"), load_json(run_dir / "metrics.json")
        if config.get("experiment") != "evaluate":
            raise ValueError(f"{run_dir}: a {config.get('experiment')!r} run, not an evaluation (deepfake-keras "
                             f"evaluate)")
        bundle = config["bundle"]
        model = f"{bundle.get('description') or bundle['kind']} [{Path(bundle['path']).parent.name}]"
        dataset = f"{config['dataset']}: {Path(config['root']).name} ({config['split']})"
        cells.setdefault(model, {})[dataset] = pct(metrics.get("video", {}).get("auc"))
    datasets = list(dict.fromkeys(d for row in cells.values() for d in row))
    table = pd.DataFrame([[model, *[row.get(d) for d in datasets]] for model, row in cells.items()],
                         columns=["Model", *datasets])
    path = None
    if out_dir is not None:
        path = write_table(table, out_dir, "cross", "Cross-dataset evaluation: video AUC (%)",
                           "Each cell: the model's video-level AUC on that dataset (deepfake-keras evaluate).")
    return table, path


REPORTS = {"ffpp_triplet": _report_ffpp_triplet, "celebdf_xception_bagging": _report_celebdf,
           "ffpp_baselines": _report_ffpp_baselines, "evaluate": _report_evaluate}


def report(run_dir) -> list:
    """(Re)draw the tables and figures of a run from its saved results; returns the files written."""
    run_dir = Path(run_dir)
    for name in ("config.json", "metrics.json"):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{run_dir / name} not found: {run_dir} is not a finished run")
    config, metrics = load_json(run_dir / "config.json"), load_json(run_dir / "metrics.json")
    experiment = config.get("experiment")
    if experiment not in REPORTS:
        raise ValueError(f"{run_dir}: no report for experiment {experiment!r} (known: {sorted(REPORTS)})")
    return REPORTS[experiment](run_dir, config, metrics)
