"""Training under tf.distribute (training/distribute.py). The machine has no GPU, so the mirrored
strategy is checked over two logical CPU devices, in a fresh process (devices must be set before
TensorFlow starts). Where a model's loss is a mean over examples and nothing is random per replica
(no dropout, no batch norm), mirroring only splits each global batch in two and averages the halves'
gradients: the loss curves equal one device's up to float summation order. Where a replica computes
something on its own share (semi-hard mining within the half batch, batch-norm statistics), the runs
differ by design, so those are checked to train, record two replicas and save what they validated."""
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from deepfake_keras.config import STRATEGIES, TripletExperiment

SCRIPT = textwrap.dedent(r'''
    import json, sys
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    from deepfake_keras.training.distribute import strategy_for, describe
    from deepfake_keras.training.fit import fit_resumable
    from deepfake_keras.training.triplet import train_triplet_head
    out_root = sys.argv[1]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 16)).astype("float32")
    y = (x[:, :4].sum(axis=1) + 0.5 * rng.normal(size=256) > 0).astype("int64")
    results = {}
    for name in ("one", "mirrored"):
        strategy = strategy_for(name)

        def build():
            tf.keras.utils.set_random_seed(1)
            inputs = tf.keras.Input((16,))
            hidden = tf.keras.layers.Dense(8, activation="relu")(inputs)
            return tf.keras.Model(inputs, tf.keras.layers.Dense(1, activation="sigmoid", dtype="float32")(hidden))

        def data():
            return {"x": x[:192], "y": y[:192], "batch_size": 32, "shuffle": False,
                    "validation_data": (x[192:], y[192:])}

        record, _ = fit_resumable(build, data, f"{out_root}/dense_{name}", epochs=4, patience=None, seed=0,
                                  settings={"batch_size": 32, "strategy": name}, strategy=strategy,
                                  log_dir=f"{out_root}/logs/dense_{name}")
        if name == "mirrored":  # interrupted after epoch 2 (as a kill would), then resumed
            class Stop(tf.keras.callbacks.Callback):
                def on_epoch_end(self, epoch, logs=None):
                    if epoch == 1:
                        raise KeyboardInterrupt

            try:
                fit_resumable(build, data, f"{out_root}/resumed", epochs=4, patience=None, seed=0,
                              settings={"batch_size": 32}, strategy=strategy, callbacks=[Stop()],
                              log_dir=f"{out_root}/logs/resumed")
            except KeyboardInterrupt:
                pass
            resumed, _ = fit_resumable(build, data, f"{out_root}/resumed", epochs=4, patience=None, seed=0,
                                       settings={"batch_size": 32}, strategy=strategy,
                                       log_dir=f"{out_root}/logs/resumed")
            results["resumed"] = {"history": {k: resumed["history"][k] for k in ("loss", "val_loss")},
                                  "resumed_at": resumed["resumed_at"]}
        heads = {}
        for mining in ("random", "semi-hard"):
            _, rec = train_triplet_head(x[:192], y[:192], x[192:], y[192:], mining=mining, epochs=3, batch_size=32,
                                        dropout=0.0, seed=0, strategy=strategy)
            heads[mining] = {"loss": rec["history"]["loss"], "val_loss": rec["history"]["val_loss"],
                             "initial_val_loss": rec["initial_val_loss"], "distribute": rec["distribute"]}
        results[name] = {"dense": {k: record["history"][k] for k in ("loss", "val_loss")},
                         "dense_distribute": record["distribute"], "heads": heads,
                         "replicas": strategy.num_replicas_in_sync}
    print("RESULT " + json.dumps(results))
''')


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("distribute")
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(out)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(l for l in done.stdout.splitlines() if l.startswith("RESULT "))
    return json.loads(line[len("RESULT "):]), out


def test_mirrored_over_two_devices_splits_each_batch(runs):
    results, _ = runs
    assert results["one"]["replicas"] == 1 and results["mirrored"]["replicas"] == 2
    d = results["mirrored"]["dense_distribute"]
    assert d["strategy"] == "MirroredStrategy" and d["global_batch"] == 32 and d["per_replica_batch"] == 16
    assert len(d["devices"]) == 2
    assert results["mirrored"]["heads"]["semi-hard"]["distribute"]["replicas"] == 2


def test_mean_losses_train_the_same_on_one_device_and_mirrored(runs):
    """Cross-entropy (the classifiers) and the random-triplet loss are means over examples: the curves
    match to float32 round-off of reordered sums (relative 1e-3 over a few epochs: the differences
    compound through the updates but stay orders of magnitude below the changes between epochs)."""
    results, _ = runs
    one, mirrored = results["one"], results["mirrored"]
    for key in ("loss", "val_loss"):
        assert one["dense"][key] == pytest.approx(mirrored["dense"][key], rel=1e-3)
        assert one["heads"]["random"][key] == pytest.approx(mirrored["heads"]["random"][key], rel=1e-3)
    assert one["dense"]["loss"][-1] < one["dense"]["loss"][0]  # and it is learning, so the check has teeth


def test_a_mirrored_training_interrupted_resumes_where_it_stopped(runs):
    """Killed after epoch 2 and run again: epochs 3-4 continue from the checkpoint (weights and optimizer
    state of the mirrored variables) and the curve is the uninterrupted run's; its CSV log holds each
    epoch once (the first run's two rows kept, the resumed run's two appended)."""
    results, out = runs
    resumed = results["resumed"]
    assert resumed["resumed_at"] == [0, 2]
    for key in ("loss", "val_loss"):
        assert resumed["history"][key] == pytest.approx(results["mirrored"]["dense"][key], rel=1e-5)
    csv = pd.read_csv(out / "logs" / "resumed" / "training.csv")
    assert csv["epoch"].tolist() == [0, 1, 2, 3]
    assert csv["loss"].tolist() == pytest.approx(resumed["history"]["loss"], rel=1e-6)


def test_semi_hard_mining_per_replica_still_trains(runs):
    """Each replica mines semi-hard triplets in its half of a batch (the batches interleave the classes,
    so each half holds both): not the same loss as one device, but it must learn."""
    results, _ = runs
    head = results["mirrored"]["heads"]["semi-hard"]
    assert min(head["val_loss"]) < head["initial_val_loss"]
    assert all(v == v for v in head["loss"])  # no NaN


def test_training_curves_are_logged(runs):
    results, out = runs
    csv = pd.read_csv(out / "logs" / "dense_mirrored" / "training.csv")
    assert csv["epoch"].tolist() == [0, 1, 2, 3]
    assert csv["loss"].tolist() == pytest.approx(results["mirrored"]["dense"]["loss"], rel=1e-6)
    assert list((out / "logs" / "dense_mirrored").glob("train/events.out.tfevents.*"))


def test_the_strategy_is_a_validated_setting():
    assert set(STRATEGIES) == {"auto", "one", "mirrored", "multiworker"}
    with pytest.raises(ValueError, match="strategy must be one of"):
        TripletExperiment.demo(strategy="gpu")


XCEPTION_BAGS = textwrap.dedent(r'''
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tests.tiny_store import celebdf_like
    from deepfake_keras.models.xception import build_xception
    from deepfake_keras.training.bagging import train_bag
    from deepfake_keras.training.distribute import strategy_for
    out = sys.argv[1]
    store = celebdf_like(out + "/store", n_fake=4, n_real=4, frames=2, size=71)
    faces = store.faces()
    train = faces[faces["split"] == "train"].reset_index(drop=True)

    def build(image_size, weights):  # no dropout: its masks are drawn per replica
        return build_xception(image_size, weights, dropout=0.0)

    records = {}
    for name in ("one", "mirrored"):
        records[name] = train_bag(train, store.root, f"{out}/bag_{name}", train.iloc[::3].reset_index(drop=True),
                                  epochs=2, image_size=71, batch_size=8, weights="none", seed=0, patience=None,
                                  learning_rate=2e-4, build_model=build, strategy=strategy_for(name),
                                  log_dir=f"{out}/logs/{name}")
    print("RESULT " + json.dumps(records))
''')


@pytest.mark.slow
def test_an_xception_bag_trains_mirrored_as_on_one_device(tmp_path):
    """One Xception bag (71 px, random start, no dropout) on one device and mirrored over two CPU devices.
    Batch norm is synchronised over the replicas (training.distribute.synchronize_batch_norm), so both
    runs compute the statistics of the same global batch of 8: the training losses agree to float
    round-off (measured 2e-5 relative after epoch 1, 1e-3 after epoch 2; bound 1e-2). The validation loss
    goes through batch-norm statistics recomputed on the training frames (fit.recalibrate_batch_norm),
    which turn those round-off differences into a few percent on a 12-frame validation set (measured
    3 % and 6 %; bound 15 %). Unsynchronised, the same runs differed by 270 % in training loss after 2
    epochs: the bounds would catch it. The mirrored bag's saved weights load into a one-device model."""
    import numpy as np

    from deepfake_keras.data.inputs import face_dataset
    from deepfake_keras.data.store import FaceStore
    from deepfake_keras.models.xception import build_xception
    from deepfake_keras.training.fit import load_weights

    done = subprocess.run([sys.executable, "-c", XCEPTION_BAGS, str(tmp_path)], capture_output=True, text=True,
                          timeout=2400, cwd=str(Path(__file__).resolve().parents[2]))
    assert done.returncode == 0, done.stderr[-3000:]
    records = json.loads(next(l for l in done.stdout.splitlines() if l.startswith("RESULT "))[len("RESULT "):])
    one, mirrored = records["one"], records["mirrored"]
    assert one["distribute"]["replicas"] == 1
    assert mirrored["distribute"]["replicas"] == 2 and mirrored["distribute"]["per_replica_batch"] == 4
    assert mirrored["history"]["loss"] == pytest.approx(one["history"]["loss"], rel=1e-2)
    assert mirrored["history"]["val_loss"] == pytest.approx(one["history"]["val_loss"], rel=0.15)
    assert one["history"]["loss"][-1] < one["history"]["loss"][0]
    assert len(pd.read_csv(tmp_path / "logs" / "mirrored" / "training.csv")) == mirrored["epochs_run"] == 2

    faces = FaceStore.open(tmp_path / "store").faces()
    faces = faces[faces["split"] == "train"].reset_index(drop=True)
    models = {name: load_weights(build_xception(71, weights=None, dropout=0.0), tmp_path / f"bag_{name}" / r["weights"])
              for name, r in records.items()}
    p = {name: m.predict(face_dataset(faces, tmp_path / "store", 71, 8, labels=False), verbose=0).ravel()
         for name, m in models.items()}
    assert np.isfinite(p["mirrored"]).all()
    assert np.corrcoef(p["one"], p["mirrored"])[0, 1] > 0.9  # the same model, up to round-off


def test_mixed_precision_keeps_every_output_float32():
    """Under mixed_float16 the layers compute in float16 but each model's output layer is float32, so
    probabilities, embeddings and losses keep float32 precision (Keras' mixed-precision guide)."""
    import tensorflow as tf

    from deepfake_keras.models.dense import build_dense_classifier
    from deepfake_keras.models.sequence import build_recurrent
    from deepfake_keras.models.triplet import build_triplet_head
    from deepfake_keras.models.xception import build_xception
    from deepfake_keras.training.distribute import set_mixed_precision

    try:
        assert set_mixed_precision(True) == "mixed_float16"
        models = [build_triplet_head(8), build_dense_classifier(8)[0], build_recurrent("gru", 3, 8),
                  build_xception(71, weights=None)]
        for model in models:
            assert model.output.dtype == tf.float32, model.name
            assert any(layer.compute_dtype == "float16" for layer in model.layers), model.name
    finally:
        assert set_mixed_precision(False) == "float32"


def test_the_csv_log_is_appended_to_only_on_resume(tmp_path):
    """training.csv is written anew by a training that starts from scratch (a rerun of the triplet head or
    the dense net, which keep no checkpoint, must not add its epochs a second time), and on a resume from
    a checkpoint after N epochs keeps exactly the rows of those N epochs before appending."""
    import numpy as np

    from deepfake_keras.training.fit import training_logs
    from deepfake_keras.training.triplet import train_dense_classifier, train_triplet_head

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    for _ in range(2):  # a rerun
        train_triplet_head(x, y, x, y, mining="random", epochs=2, batch_size=16, steps_per_epoch=2, seed=0,
                           log_dir=tmp_path / "head")
        train_dense_classifier(x, y, x, y, epochs=2, batch_size=16, seed=0, log_dir=tmp_path / "dense")
    for name in ("head", "dense"):
        assert pd.read_csv(tmp_path / name / "training.csv")["epoch"].tolist() == [0, 1], name

    log = tmp_path / "resumed" / "training.csv"
    log.parent.mkdir()
    log.write_bytes(b"epoch,loss\r\n0,0.9\r\n1,0.8\r\n2,0.7\r\n")  # a row past the checkpoint of epoch 2
    training_logs(log.parent, resume_epoch=2)
    assert log.read_bytes() == b"epoch,loss\r\n0,0.9\r\n1,0.8\r\n"


def test_the_nested_triplet_run_of_ffpp_baselines_keeps_the_strategy(tmp_path, monkeypatch):
    """ffpp-baselines runs the triplet experiment for its triplet row under its own strategy and dtype policy."""
    from deepfake_keras.config import BaselinesExperiment
    from deepfake_keras.pipelines import ffpp_baselines, ffpp_triplet

    seen = []

    def run(config, out, **kwargs):
        seen.append(config)
        raise InterruptedError

    monkeypatch.setattr(ffpp_triplet, "run", run)
    config = BaselinesExperiment.demo(strategy="mirrored", mixed_precision=True, seed=3)
    with pytest.raises(InterruptedError):
        ffpp_baselines.triplet_row_for(config, tmp_path, "demo-root", True, 1, False)
    assert (seen[0].strategy, seen[0].mixed_precision, seen[0].seed) == ("mirrored", True, 3)


def test_ffpp_baselines_records_every_models_batch_split():
    """config.json of ffpp-baselines: global and per-replica batch and learning rate of the Xception, the
    LSTM/GRU and the Conv3D/ConvLSTM (over a stand-in for a strategy of 2 replicas)."""
    from types import SimpleNamespace

    from deepfake_keras.config import BaselinesExperiment, XceptionConfig
    from deepfake_keras.pipelines.ffpp_baselines import CONV_LEARNING_RATE, SEQ_BATCH, distribute_record

    two = SimpleNamespace(num_replicas_in_sync=2, extended=SimpleNamespace(worker_devices=("/cpu:0", "/cpu:1")))
    config = BaselinesExperiment.paper(batch_size=32, conv_batch_size=8)
    record = distribute_record(two, config)
    want = {"xception": (32, XceptionConfig.learning_rate), "lstm_gru": (SEQ_BATCH, XceptionConfig.learning_rate),
            "conv3d_convlstm": (8, CONV_LEARNING_RATE)}
    for key, (batch, lr) in want.items():
        got = record[key]
        assert (got["replicas"], got["global_batch"], got["per_replica_batch"], got["learning_rate"]) == \
            (2, batch, batch // 2, lr), key
    with pytest.raises(ValueError, match="does not split evenly"):
        distribute_record(two, BaselinesExperiment.paper(conv_batch_size=3))


MULTIWORKER = textwrap.dedent(r'''
    import json, os, sys
    from pathlib import Path
    import numpy as np
    from deepfake_keras.config import TripletExperiment
    from deepfake_keras.pipelines.common import training_setup

    out = Path(sys.argv[1])
    # the pipelines' own start (seeds, deterministic ops, dtype policy, then the strategy and its devices line):
    # with TF_CONFIG naming 2 workers, anything that starts the runtime first makes the strategy fail
    setup = training_setup(TripletExperiment.demo(strategy="multiworker"), out)
    import tensorflow as tf
    from deepfake_keras.training.distribute import is_chief
    from deepfake_keras.training.fit import fit_resumable
    from deepfake_keras.training.triplet import train_triplet_head
    strategy = setup["strategy"]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 8)).astype("float32")
    y = (x[:, :2].sum(axis=1) > 0).astype("int64")

    def build():
        tf.keras.utils.set_random_seed(1)
        inputs = tf.keras.Input((8,))
        hidden = tf.keras.layers.Dense(4, activation="relu")(inputs)
        return tf.keras.Model(inputs, tf.keras.layers.Dense(1, activation="sigmoid", dtype="float32")(hidden))

    def data():
        return {"x": x[:64], "y": y[:64], "batch_size": 16, "shuffle": False, "validation_data": (x[64:], y[64:])}

    def fit(name, **kwargs):
        return fit_resumable(build, data, out / "models" / name, epochs=3, patience=None, seed=0,
                             settings={"batch_size": 16}, strategy=strategy, log_dir=setup["logs"] / name, **kwargs)

    class Stop(tf.keras.callbacks.Callback):  # every worker stops after epoch 2, as a killed job would
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    record, model = fit("dense")
    try:
        fit("resumed", callbacks=[Stop()])
    except KeyboardInterrupt:
        pass
    resumed, _ = fit("resumed")
    head, _ = train_triplet_head(x[:64], y[:64], x[64:], y[64:], mining="random", epochs=2, batch_size=16,
                                 steps_per_epoch=2, dropout=0.0, seed=0, strategy=strategy,
                                 out_dir=out / "models" / "triplet", log_dir=setup["logs"] / "triplet")
    print("RESULT " + json.dumps({"chief": is_chief(strategy), "pid": os.getpid(),
                                  "replicas": strategy.num_replicas_in_sync, "strategy": record["distribute"],
                                  "weights": [w.tolist() for w in model.get_weights()],
                                  "head": [w.tolist() for w in head.get_weights()],
                                  "history": record["history"], "resumed": resumed["history"],
                                  "resumed_at": resumed["resumed_at"]}), flush=True)
''')


def _free_ports(n: int) -> list:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def test_multiworker_trains_on_two_local_workers_and_only_the_chief_writes(tmp_path):
    """A real MultiWorkerMirroredStrategy: two worker processes on localhost (TF_CONFIG, free ports) start
    through the pipelines' training_setup, train a small model with fit_resumable (once through, once
    stopped after epoch 2 and resumed), and a triplet head. Both exit 0 with the same weights; the resumed
    run continues the chief's checkpoint on both workers and ends where the uninterrupted one did; the run
    folder holds the chief's files only (its event files carry the chief's pid; no worker's temporary
    folder is left)."""
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    run = tmp_path / "run"
    procs, logs = [], []
    for index in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        logs.append((open(tmp_path / f"out{index}.txt", "w"), open(tmp_path / f"err{index}.txt", "w")))
        procs.append(subprocess.Popen([sys.executable, "-c", MULTIWORKER, str(run)], env=env, stdout=logs[-1][0],
                                      stderr=logs[-1][1]))
    try:
        codes = [proc.wait(timeout=600) for proc in procs]
    finally:
        for proc in procs:  # a worker whose peer died waits for it forever and ignores SIGTERM
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        for files in logs:
            for f in files:
                f.close()
    for index, code in enumerate(codes):
        assert code == 0, (tmp_path / f"err{index}.txt").read_text()[-3000:]
    results = [json.loads(next(line for line in (tmp_path / f"out{index}.txt").read_text().splitlines()
                               if line.startswith("RESULT "))[len("RESULT "):]) for index in range(2)]
    chief, other = results
    assert (chief["chief"], other["chief"]) == (True, False)
    assert chief["replicas"] == other["replicas"] == 2 and chief["strategy"]["per_replica_batch"] == 8
    assert chief["weights"] == other["weights"] and chief["head"] == other["head"]
    for result in results:
        assert result["resumed_at"] == [0, 2]
        assert result["resumed"]["loss"] == pytest.approx(chief["history"]["loss"], rel=1e-5)

    files = {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()}
    events = {f for f in files if "tfevents" in f}
    assert files - events == {*(f"models/{m}/{f}" for m in ("dense", "resumed")
                                for f in ("settings.json", "model.weights.h5", "model.json")),
                              "models/triplet/triplet_head.json", "models/triplet/triplet_head.weights.h5",
                              *(f"logs/{m}/training.csv" for m in ("dense", "resumed", "triplet"))}
    assert {f.split(".")[-3] for f in events} == {str(chief["pid"])}  # events.out.tfevents.<time>.<host>.<pid>.<n>.v2
    assert not [p for p in run.rglob("workertemp_*")]
    assert pd.read_csv(run / "logs" / "resumed" / "training.csv")["epoch"].tolist() == [0, 1, 2]
