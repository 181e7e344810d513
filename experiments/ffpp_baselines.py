"""The FF++ baselines (Table II): `deepfake-keras ffpp-baselines --help` lists the options."""
import sys

from deepfake_keras.cli import main

if __name__ == "__main__":
    sys.exit(main(["ffpp-baselines", *sys.argv[1:]]))
