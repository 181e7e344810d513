"""The Celeb-DF Xception bagging experiment (Table I, Figs 4, 5, 7): `deepfake-keras celebdf-bagging --help` lists the options."""
import sys

from deepfake_keras.cli import main

if __name__ == "__main__":
    sys.exit(main(["celebdf-bagging", *sys.argv[1:]]))
