"""What TensorFlow's op determinism costs here: the same trainings with and without
``tf.config.experimental.enable_op_determinism`` (which every experiment turns on,
:func:`deepfake_keras.training.fit.deterministic`), each in a fresh process, side by side,
alternating which goes first.

    python benchmarks/determinism_cost.py              # 3 rounds: about 5 minutes on 2 cores
    python benchmarks/determinism_cost.py --rounds 5

Timed in each process, after its imports: the semi-hard triplet head with the authors'
settings (20 epochs, batch 32) on 2,000 random 128-d vectors, and an Xception at 71 px
trained from scratch for 2 epochs on 256 random images (batch 16, the DEMO's sizes). The
load average is printed with every run. A benchmark: it prints what it measured.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

CHILD = r"""
import json, sys, time
import numpy as np
import tensorflow as tf
from deepfake_keras.training.fit import deterministic
if sys.argv[1] == "on":
    deterministic(0)  # what every experiment does
else:
    tf.keras.utils.set_random_seed(0)
from deepfake_keras.models.xception import build_xception
from deepfake_keras.training.triplet import train_triplet_head
rng = np.random.default_rng(0)
x = rng.normal(size=(2000, 128)).astype(np.float32)
y = np.tile([0, 1], 1000)
t = time.perf_counter()
train_triplet_head(x[:1600], y[:1600], x[1600:], y[1600:], epochs=20, batch_size=32, seed=0)
head = time.perf_counter() - t
images = rng.uniform(0, 1, size=(256, 71, 71, 3)).astype(np.float32)
labels = rng.integers(0, 2, size=256).astype(np.float32)
model = build_xception(71, weights=None)
model.compile(optimizer="adam", loss="binary_crossentropy")
t = time.perf_counter()
model.fit(images, labels, batch_size=16, epochs=2, verbose=0)
xception = time.perf_counter() - t
print(json.dumps({"head_s": head, "xception_s": xception}))
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    runs = {"on": [], "off": []}
    print(f"{os.cpu_count()} CPU(s); load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    for r in range(args.rounds):
        for mode in (("on", "off") if r % 2 == 0 else ("off", "on")):
            started = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, env=env)
            if out.returncode != 0:
                print(out.stderr[-2000:], file=sys.stderr)
                return 1
            result = json.loads(out.stdout.strip().splitlines()[-1])
            runs[mode].append(result)
            print(f"  round {r + 1}, determinism {mode:<3}: head {result['head_s']:.1f} s, Xception "
                  f"{result['xception_s']:.1f} s (process {time.perf_counter() - started:.0f} s); load average "
                  f"{os.getloadavg()[0]:.2f}", flush=True)
    print()
    for key, name in (("head_s", "triplet head, 20 epochs"), ("xception_s", "Xception 71 px, 2 epochs")):
        on = sorted(r[key] for r in runs["on"])[len(runs["on"]) // 2]
        off = sorted(r[key] for r in runs["off"])[len(runs["off"]) // 2]
        print(f"{name:<26} median with determinism {on:.1f} s, without {off:.1f} s: cost {100 * (on / off - 1):+.0f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
