"""Tables put the paper's numbers beside ours, in percent; figures draw what they are given."""
import numpy as np
import pandas as pd

from deepfake_keras import reporting


def test_table_3_has_paper_and_measured_rows_in_percent(tmp_path):
    measured = {"Triplets + SGD": {"precision_real": 0.5, "recall_real": 0.25, "f1_real": 1 / 3, "auc": 0.9,
                                   "eer": 0.125, "precision_fake": 0.1, "recall_fake": 0.2, "f1_fake": 0.3}}
    t = reporting.table_3(measured)
    sgd = t[t.Model == "Triplets + SGD"].set_index("Source")
    assert sgd.loc[reporting.PAPER, "AUC"] == 92.9 and sgd.loc[reporting.PAPER, "EER"] == 10.07
    assert list(sgd.loc[reporting.MEASURED, ["P", "R", "F1", "AUC", "EER"]]) == [50.0, 25.0, 33.33, 90.0, 12.5]
    assert (t.Model == "Triplets + RF").sum() == 1  # paper row only: not measured
    md = reporting.write_table(t, tmp_path, "table_3", "DEMO data: Table III")
    text = md.read_text()
    assert text.startswith("# DEMO data: Table III")
    assert "| Triplets + SGD | measured (this run) | 50.00 | 25.00 | 33.33 | 90.00 | 12.50 |" in text
    assert pd.read_csv(tmp_path / "table_3.csv").shape == (3, 7)


def test_table_2_keeps_paper_rows_and_appends_ours():
    t = reporting.table_2({"Triplets (Semi-hard)": 0.8, "ConvLSTM": 0.5})
    assert list(t.Model) == ["Frames only", "3d Convolution", "Frames + LSTM/GRU", "Triplets (Semi-hard)", "ConvLSTM"]
    row = t.set_index("Model")
    assert row.loc["Triplets (Semi-hard)", "Paper accuracy (%)"] == 86.74
    assert row.loc["Triplets (Semi-hard)", "Measured accuracy (%)"] == 80.0
    assert np.isnan(row.loc["Frames only", "Measured accuracy (%)"])
    assert row.loc["ConvLSTM", "Row"] == "ours (not in the paper)"


def test_tables_1_and_4_mark_sources():
    t1 = reporting.table_1({"Ours (Frames only)": 0.75})
    assert len(t1) == 14 and t1.iloc[-1].tolist() == ["Ours (Frames only) [this run]", 75.0, reporting.MEASURED]
    assert (t1.Source == reporting.PAPER).sum() == 13
    t4 = reporting.table_4({"Triplets + SGD": {"NeuralTextures": 0.9, "pristine": 0.6}})
    assert t4.iloc[-1].tolist() == ["Triplets + SGD [this run]", 90.0, 60.0, reporting.MEASURED]
    t4 = reporting.table_4({"Triplets + RF": {"Deepfakes": 0.8, "FaceSwap": (0.5, 0.1), "pristine": 0.7}},
                           methods=("Deepfakes", "FaceSwap"))
    assert list(t4.columns) == ["Model", "Deepfakes (%)", "FaceSwap (%)", "Pristine (%)", "Source"]
    assert t4.iloc[-1].tolist() == ["Triplets + RF [this run]", 80.0, "50.00 ± 10.00", 70.0, reporting.MEASURED]
    assert t4.iloc[0]["Pristine (%)"] == 56.94 and pd.isna(t4.iloc[0]["Deepfakes (%)"])  # paper rows: NT only


def test_tsne_figure_has_one_panel_per_embedding(tmp_path):
    import matplotlib.image as mpimg

    rng = np.random.default_rng(0)
    pts = pd.DataFrame({"panel": ["a"] * 20 + ["b"] * 20, "x": rng.normal(size=40), "y": rng.normal(size=40),
                        "label": [0, 1] * 20})
    one = reporting.plot_tsne(pts[pts.panel == "a"], tmp_path / "one.png", "t")
    two = reporting.plot_tsne(pts, tmp_path / "two.png", "t")
    w1, w2 = mpimg.imread(one).shape[1], mpimg.imread(two).shape[1]
    assert 1.7 < w2 / w1 < 2.3  # two panels side by side
    assert two.with_suffix(".pdf").is_file()
