"""Celeb-DF v2: Xception with seven-way bagging, and triplets (Table I, Figures 4, 5, 7 of the paper).

    python experiments/celebdf_xception_bagging.py                      # built-in DEMO data
    python experiments/celebdf_xception_bagging.py --data-root /data/Celeb-DF-v2

See deepfake_keras/pipelines/celebdf_bagging.py for the steps and settings.
"""
import sys

from deepfake_keras.pipelines.celebdf_bagging import main

if __name__ == "__main__":
    sys.exit(main())
