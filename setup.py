from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
requirements = [
    line.strip()
    for line in (here / "requirements.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]

setup(
    name="deepfake_keras",
    version="0.1.0",
    description="Detecting Deepfakes with Metric Learning (Kumar, Bhavsar, Verma, 2020) in Keras/TensorFlow",
    long_description=(here / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["deepfake_keras", "deepfake_keras.*"]),
    # exactly 3.11: TensorFlow 2.15 and TensorFlow Addons have no wheels past it, and the pinned pandas,
    # scikit-learn, matplotlib and av need it (the README's commands check it first, in one line)
    python_requires="==3.11.*",
    install_requires=requirements,
    # `deepfake-keras extract --scheduler` (Dask workers): pip install -e .[distributed] (the version
    # requirements-test.txt pins)
    extras_require={"distributed": ["dask[distributed]==2024.8.0"]},
    entry_points={"console_scripts": ["deepfake-keras=deepfake_keras.cli:main"]},
)
