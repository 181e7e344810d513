"""The FF++ triplet experiment (Tables II-IV, Figs 6-7): `deepfake-keras ffpp-triplet --help` lists the options."""
import sys

from deepfake_keras.cli import main

if __name__ == "__main__":
    sys.exit(main(["ffpp-triplet", *sys.argv[1:]]))
