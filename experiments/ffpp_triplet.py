"""FaceForensics++ triplet experiment (Tables II-IV, Figures 6-7 of the paper).

    python experiments/ffpp_triplet.py                       # built-in DEMO data
    python experiments/ffpp_triplet.py --data-root /data/FF++ --splits /data/ff-splits

See deepfake_keras/pipelines/ffpp_triplet.py for the steps and the models compared.
"""
import sys

from deepfake_keras.pipelines.ffpp_triplet import main

if __name__ == "__main__":
    sys.exit(main())
