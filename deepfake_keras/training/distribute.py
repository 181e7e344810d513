"""Where training runs: a ``tf.distribute`` strategy, mixed precision, and the line that says so.

Every Keras model of the package is built and compiled inside :func:`strategy_for`'s strategy
(``fit.fit_resumable``, ``triplet.train_triplet_head``), so the same code trains on this laptop's CPU,
on several GPUs of one machine (``mirrored``) or on several machines (``multiworker``, with the
usual ``TF_CONFIG``). The batch size a run is given is the global batch: each of the strategy's
replicas sees ``batch / replicas`` of it (:func:`describe`, recorded in ``config.json``); the learning
rate is not rescaled.

``auto`` (the default) takes ``MirroredStrategy`` when more than one GPU is visible, else the default
strategy (one device, no copying). ``one`` is ``OneDeviceStrategy`` on the first GPU, or the CPU.
``mirrored`` mirrors over every GPU, or, on a machine without one, over every logical CPU device (how
the tests check it: two logical CPUs, ``tf.config.set_logical_device_configuration``). ``multiworker`` is
``MultiWorkerMirroredStrategy`` over the machines of ``TF_CONFIG``, every GPU of each (or its CPU); it is
built before anything touches the devices. Every worker runs the same program; only the chief's files
(checkpoints, weights, records, logs) land in the run folder, the others write into temporary folders
removed afterwards (:func:`write_dir`). A resumed ``multiworker`` run restores every worker from the chief's
checkpoint, so the run folder must be on a file system all workers share.

Mixed precision (``mixed_float16``) computes in float16 on GPUs that have the units for it; every
model's output layer stays float32 (``dtype="float32"``), so probabilities and losses are float32.
"""
from __future__ import annotations

import functools
import shutil
from pathlib import Path

from ..config import STRATEGIES



@functools.cache
def _multiworker():
    """The process's ``MultiWorkerMirroredStrategy``, built once."""
    import tensorflow as tf

    return tf.distribute.MultiWorkerMirroredStrategy()


def strategy_for(name: str = "auto"):
    """The ``tf.distribute`` strategy called ``name`` (see the module docstring)."""
    import tensorflow as tf

    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")
    if name == "multiworker":  # before anything lists the devices: that starts TensorFlow's runtime, and a
        # cluster of several workers (TF_CONFIG) must configure its collective ops before it starts (TF 2.15:
        # "RuntimeError: Collective ops must be configured at program startup"); one per process (a run that
        # runs another, ffpp-baselines its triplet run, trains on the same cluster)
        return _multiworker()
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    if name == "auto":
        return tf.distribute.MirroredStrategy(gpus) if len(gpus) > 1 else tf.distribute.get_strategy()
    if name == "one":
        return tf.distribute.OneDeviceStrategy(gpus[0] if gpus else cpus[0])
    return tf.distribute.MirroredStrategy(gpus or cpus)  # mirrored


def is_chief(strategy=None) -> bool:
    """Whether this process writes a training's files where they belong: True but on the workers of a
    ``multiworker`` run other than its chief (worker 0, or the ``chief`` task of ``TF_CONFIG``)."""
    import tensorflow as tf

    return bool((strategy or tf.distribute.get_strategy()).extended.should_checkpoint)


def write_dir(path, strategy=None) -> Path:
    """Where this process writes what belongs in the folder ``path``: ``path`` itself on the chief (and
    under every strategy but ``multiworker``); on another worker, a temporary folder of its own,
    ``path/workertemp_<task id>``, which the caller removes (:func:`remove_write_dir`) once done. The rule of
    the Keras multi-worker guide (and of Keras' own ``TensorBoard`` and ``BackupAndRestore``): every worker
    runs the same saves (they may take part in collective ops), only the chief's land in the run folder."""
    path = Path(path)
    if is_chief(strategy):
        return path
    resolver = getattr(strategy, "cluster_resolver", None)
    return path / f"workertemp_{getattr(resolver, 'task_id', None)}"


def remove_write_dir(written, path) -> None:
    """Remove the temporary folder :func:`write_dir` gave a worker other than the chief (nothing else)."""
    if Path(written) != Path(path):
        shutil.rmtree(written, ignore_errors=True)


def synchronize_batch_norm(model, strategy) -> int:
    """Under a strategy of several replicas, make every ``BatchNormalization`` layer of ``model`` compute
    its batch statistics over the global batch (Keras' ``synchronized=True``, one all-reduce per layer and
    step) rather than over each replica's share; returns the number of layers changed (0 on one replica).

    Why: Xception normalises with batch statistics while training; over 2 replicas a batch of 32 would be
    normalised as two batches of 16, another model than the paper's (measured on a tiny Xception bag over
    two CPU devices: training loss 0.21 against 0.056 on one device after 2 epochs). Synchronised, the
    mirrored run computes what one device computes, up to the order of float sums."""
    import tensorflow as tf

    if strategy.num_replicas_in_sync < 2:
        return 0
    layers = [m for m in model.submodules if isinstance(m, tf.keras.layers.BatchNormalization)]
    for layer in layers:
        layer.synchronized, layer.fused = True, False  # read when the training step is traced
    return len(layers)


def set_mixed_precision(on: bool) -> str:
    """Keras' global dtype policy: ``mixed_float16`` when ``on``, else ``float32``; returns its name."""
    import tensorflow as tf

    policy = "mixed_float16" if on else "float32"
    tf.keras.mixed_precision.set_global_policy(policy)
    return policy


def devices_of(strategy) -> list:
    """The devices ``strategy`` computes on (the default strategy: where TensorFlow puts ops, the first GPU,
    else the CPU)."""
    import tensorflow as tf

    if not tf.distribute.has_strategy() and strategy is tf.distribute.get_strategy():
        gpus = tf.config.list_logical_devices("GPU")
        return [(gpus or tf.config.list_logical_devices("CPU"))[0].name]
    return list(strategy.extended.worker_devices)


def describe(strategy, batch_size: int, learning_rate: float) -> dict:
    """What ``config.json`` records of a training under ``strategy``: replicas, devices, the global and the
    per-replica batch, the learning rate, the dtype policy."""
    import tensorflow as tf

    replicas = int(strategy.num_replicas_in_sync)
    if batch_size % replicas:
        raise ValueError(f"the batch size {batch_size} does not split evenly over {replicas} replicas")
    return {"strategy": type(strategy).__name__, "replicas": replicas,
            "devices": devices_of(strategy), "global_batch": int(batch_size),
            "per_replica_batch": int(batch_size) // replicas, "learning_rate": float(learning_rate),
            "dtype_policy": tf.keras.mixed_precision.global_policy().name}


def devices_line(strategy) -> str:
    """One line for the log: the devices training uses."""
    import tensorflow as tf

    devices = ", ".join(devices_of(strategy))
    gpus = len(tf.config.list_physical_devices("GPU"))
    return (f"training on {strategy.num_replicas_in_sync} replica(s): {devices} ({type(strategy).__name__}; "
            f"{gpus} GPU(s) visible; dtype policy {tf.keras.mixed_precision.global_policy().name})")
