"""K-fold cross-validation by group (training/splits.grouped_folds): every video tested once, a group
never on two sides, and each fold's training and validation sides hold both classes when groups of
one class only are common (FF++ Face2Face against the originals: many pairs have no Face2Face fake)."""
import pandas as pd
import pytest

from deepfake_keras.training.splits import grouped_folds


def pairs_table(with_fake: int, real_only: int) -> pd.DataFrame:
    """FF++-like: each group a pair with two originals, and two fakes for the first ``with_fake``."""
    rows = []
    for i in range(with_fake + real_only):
        for j in range(2):
            rows.append({"store_key": f"orig_{i}_{j}", "group": f"pair{i}", "label": 0})
            if i < with_fake:
                rows.append({"store_key": f"fake_{i}_{j}", "group": f"pair{i}", "label": 1})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("seed", range(12))
def test_each_fold_trains_and_validates_on_both_classes(seed):
    videos = pairs_table(with_fake=8, real_only=8)
    label = dict(zip(videos["store_key"], videos["label"]))
    group = dict(zip(videos["store_key"], videos["group"]))
    folds = grouped_folds(videos, 4, seed)
    tested = [k for f in folds for k in f["test"]]
    assert sorted(tested) == sorted(videos["store_key"])  # every video tested exactly once
    for f in folds:
        sides = {name: {group[k] for k in f[name]} for name in ("train", "val", "test")}
        assert not (sides["train"] & sides["val"]) and not (sides["train"] & sides["test"]) \
            and not (sides["val"] & sides["test"])
        for name in ("train", "val", "test"):
            assert {label[k] for k in f[name]} == {0, 1}, (seed, f["fold"], name)
        # fakes dealt evenly: 8 groups with fakes over 4 folds, 2 each
        assert len({group[k] for k in f["test"] if label[k] == 1}) == 2


def test_the_same_seed_gives_the_same_folds_and_another_seed_others():
    videos = pairs_table(with_fake=6, real_only=4)
    assert grouped_folds(videos, 3, 5) == grouped_folds(videos, 3, 5)
    assert any(grouped_folds(videos, 3, s) != grouped_folds(videos, 3, 5) for s in range(5))


def test_without_labels_it_still_splits_by_group():
    videos = pairs_table(with_fake=6, real_only=0).drop(columns="label")
    folds = grouped_folds(videos, 3, 0)
    assert sum(len(f["test"]) for f in folds) == len(videos)
    assert all(len(f["val"]) and len(f["train"]) for f in folds)


def test_too_few_groups_or_a_class_missing_from_training_is_an_error():
    with pytest.raises(ValueError, match="at least 6 groups"):
        grouped_folds(pairs_table(3, 2), 4, 0)
    with pytest.raises(ValueError, match="k >= 2"):
        grouped_folds(pairs_table(3, 3), 1, 0)
    # a single group holds fakes: the fold testing it has no fake to train on
    with pytest.raises(ValueError, match="no training video of label 1"):
        grouped_folds(pairs_table(1, 6), 3, 0)
