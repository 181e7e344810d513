"""FaceForensics++ baselines: frames-only Xception, Xception features + LSTM/GRU, Conv3D, and a
ConvLSTM (ours), with the triplet row: Table II of the paper.

    python experiments/ffpp_baselines.py                       # built-in DEMO data
    python experiments/ffpp_baselines.py --data-root /data/FF++ --splits /data/ff-splits --compression c40
    python experiments/ffpp_baselines.py --triplet-run results/ffpp_triplet/<run>   # reuse a triplet run

See deepfake_keras/pipelines/ffpp_baselines.py for the steps and settings.
"""
import sys

from deepfake_keras.pipelines.ffpp_baselines import main

if __name__ == "__main__":
    sys.exit(main())
