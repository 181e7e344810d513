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
the tests check it: two logical CPUs, ``tf.config.set_logical_device_configuration``).

Mixed precision (``mixed_float16``) computes in float16 on GPUs that have the units for it; every
model's output layer stays float32 (``dtype="float32"``), so probabilities and losses are float32.
"""
from __future__ import annotations

from ..config import STRATEGIES


def strategy_for(name: str = "auto"):
    """The ``tf.distribute`` strategy called ``name`` (see the module docstring)."""
    import tensorflow as tf

    if name not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {name!r}")
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    if name == "auto":
        return tf.distribute.MirroredStrategy(gpus) if len(gpus) > 1 else tf.distribute.get_strategy()
    if name == "one":
        return tf.distribute.OneDeviceStrategy(gpus[0] if gpus else cpus[0])
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(gpus or cpus)
    return tf.distribute.MultiWorkerMirroredStrategy()


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
