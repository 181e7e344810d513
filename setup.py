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
    python_requires=">=3.9,<3.12",
    install_requires=requirements,
    entry_points={"console_scripts": ["deepfake-keras=deepfake_keras.cli:main"]},
)
