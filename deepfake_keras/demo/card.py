"""``DEMO.md``: what a DEMO build holds and how it was made, written beside the data."""
from __future__ import annotations

from .plan import CELEBDF_CRF, FFPP_CRF, SPLITS
from .render import X264
from .shortcut import shortcut_table


def dropped_reasons(dropped: dict) -> list:
    """``[(reason, count)]`` of dropped photos, most frequent first (by the first reason given)."""
    counts = {}
    for why in dropped.values():
        first = why.split(",")[0].split(" (")[0]
        counts[first] = counts.get(first, 0) + 1
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def demo_markdown(info: dict) -> str:
    """The ``DEMO.md`` written beside the data."""
    s, ids, v = info["settings"], info["identities"], info["versions"]
    sizes = s["sizes"]
    groups = ids["groups"]
    lines = [
        "# DEMO dataset (built-in, not Celeb-DF or FaceForensics++)",
        "",
        "This folder is the **DEMO** dataset of `deepfake_keras`, built by `deepfake-keras demo-data` "
        "(`deepfake_keras.demo.build_demo`). It has the layouts of FaceForensics++ (`ffpp/`) and Celeb-DF v2 "
        "(`celebdf/`), so the loaders for the real datasets read it unchanged and every experiment runs end to end "
        "on a machine without the gated datasets.",
        "",
        f"**{len(set(groups['train']) | set(groups['val']) | set(groups['test']))} people demonstrate the pipeline, "
        "not the paper's numbers.** Nothing measured on this demo is comparable to the paper's tables; every table "
        "and figure made from it says DEMO in its title.",
        "",
        "## Build",
        "",
        f"- demo version {s['version']}, seed {s['seed']}, faces `{s['faces']}`: {info['faces_source']['what']}"
        + (f", from the PyPI sdist `{info['faces_source']['package']}` (sha256 `{info['faces_source']['sdist_sha256']}`)"
           if "package" in info["faces_source"] else ""),
        f"- {info['videos']} video files, built in {info['seconds']:.0f} s",
        f"- clips: {sizes['frames']} frames at {sizes['fps']} fps ({sizes['frames'] / sizes['fps']:.1f} s), "
        f"{sizes['frame_size']} x {sizes['frame_size']} px, eyes {sizes['face_iod']:.0f} px apart (MTCNN box about "
        f"{2.2 * sizes['face_iod']:.0f} px)",
        f"- H.264 with libx264 (`{' '.join(X264)}`): FF++ at CRF {FFPP_CRF['c23']} (`c23`) and CRF {FFPP_CRF['c40']} "
        f"(`c40`), Celeb-DF at CRF {CELEBDF_CRF}",
        "- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()),
        "",
        "## Counts",
        "",
    ]
    for dataset, counts in info["counts"].items():
        note = " (per compression; c23 and c40 hold the same videos)" if dataset == "ffpp" else ""
        lines.append(f"{dataset}{note}: {counts['total']} videos")
        lines.append("")
        lines.append("| split | method | videos |")
        lines.append("| --- | --- | ---: |")
        for key, n in counts.items():
            if key != "total":
                split, method = key.split("/")
                lines.append(f"| {split} | {method} | {n} |")
        lines.append("")
    lines += [
        "## Identities",
        "",
        "| split | identities | Celeb-DF ids |",
        "| --- | --- | --- |",
    ]
    for split in SPLITS:
        members = groups[split]
        lines.append(f"| {split} | {', '.join(members)} | {', '.join(ids['celebdf_ids'][x] for x in members)} |")
    lines += [
        "",
        "How identities map to splits:",
        "",
        "- **Test identities never appear in a training (or validation) video**, neither as the target (the person "
        "whose clip it is) nor as the face put in. With that leak a face-embedding classifier learns identities "
        "instead of swaps (measured on these photos, leave-one-identity-out: AUC 0.21 with it, 0.56-0.67 without).",
        "- A cross-identity swap needs two people in its split, so each split needs two identities. "
        + ("With only "
           f"{len(groups['train']) + len(groups['test'])} people there are not enough for three disjoint groups: "
           f"{len(groups['test'])} are held out for test, and validation uses the training identities with photos "
           "that no training video uses (no test identity is ever used for validation either)."
           if ids["shared_val"] else "The three groups are disjoint."),
        "- FF++: originals are paired across identities inside one split, and both `TTT_SSS` and `SSS_TTT` belong "
        "to the pair's split (`splits/*.json`, the official `[target, source]` form). Each original is the target of "
        "exactly one fake per method and the inserted face of exactly one cross-identity fake per method, so every "
        "identity is as frequent among the reals as among the inserted faces.",
        "- Celeb-DF has no validation split: training uses the train (and validation) identities, "
        "`List_of_testing_videos.txt` lists the test identities' videos. Each target clip of a person gets fakes "
        "with the faces of the next people of its split in turn, so every person is as often the inserted face as "
        "the target, and the shipped reals are spread evenly over the people. `idX_idY_NNNN` is idY's face in "
        "idX's clip NNNN; only some of the training target clips are shipped in `Celeb-real`, so that fakes "
        "outnumber reals as in Celeb-DF; every test target clip is shipped, so each test fake has its real twin.",
        "- Photos: " + ", ".join(f"{x} {n}" for x, n in sorted(ids["usable_photos"].items()))
        + f" usable; {len(ids['dropped_photos'])} dropped ("
        + "; ".join(f"{n} {why}" for why, n in dropped_reasons(ids["dropped_photos"]))
        + "). Identities get equal shares of the videos whatever their number of photos.",
        "",
        "## How the videos are made",
        "",
        "- **Real**: one photo animated: the face aligned upright at a fixed place, then a slow zoom, pan, roll, "
        "hand-held wobble, brightness and white-balance drift, and Gaussian sensor noise.",
        "- **Fake**: the very same clip (same motion, lighting and noise) with another face put in: warped so that its "
        "five landmarks land on the target's, colour-matched (Reinhard, Lab), blended inside the face ellipse, and "
        "pasted with a small misalignment (shift, roll, scale) that drifts from frame to frame. Before encoding, a "
        "fake is pixel-for-pixel its real twin outside the face.",
        "- Two manipulation families, two blends each (FF++ method folders):",
        "  - cross-identity swap, another person's face: `FaceSwap` (Poisson blending, `cv2.seamlessClone`) and "
        "`Deepfakes` (face resampled through 64 x 64 px like an autoencoder's output, feathered alpha blend);",
        "  - same-identity blend, another photo of the same person (as in the reenactment methods, identity is no "
        "cue): `NeuralTextures` (Poisson) and `Face2Face` (low-resolution, feathered). As in FF++, the source `SSS` "
        "of `TTT_SSS` is the pair partner and the identity stays the target's.",
        "  - Celeb-DF fakes are cross-identity swaps with Poisson blending.",
        "",
        "## Files",
        "",
        "- `ffpp/splits/{train,val,test}.json`: the official `[target, source]` pair lists (the loader finds them at "
        "`<root>/splits`).",
        "- `celebdf/List_of_testing_videos.txt`: `<1 real | 0 fake> <folder>/<file>`, as in Celeb-DF v2.",
        "- `demo_videos.csv` in each dataset: one row per video file: `split`, `label` (1 = fake), `method`, "
        "`target_identity` (whose clip), `source_identity` (whose face was put in; for the same-identity methods "
        "the target's own), `identity_celebdf` (the target's `idX`), the photos used and the blend. Read it with "
        "`dtype=str`: FF++ ids such as `000` are names, not numbers.",
        "- `demo.json`: all of this file, machine-readable. The loaders ignore these extra files.",
        "",
        "## Shortcuts closed",
        "",
        "Real and fake clips share length, frame size, frame rate, encoder and encoder settings; a fake differs from "
        "its real twin only inside the face. A logistic regression trained on the train split with features that "
        "ignore the face, scored on the test split (AUC; must be <= "
        f"{info['shortcut_limit']}, worst here {info['shortcut_worst']:.3f}):",
        "",
        shortcut_table(info["shortcut_auc"]),
        "",
    ]
    return "\n".join(lines)

