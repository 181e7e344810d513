"""deepfake_keras: Detecting Deepfakes with Metric Learning (Kumar, Bhavsar, Verma, 2020) in Keras/TensorFlow.

Data flow (one folder per stage)::

    video -> data.video (sampled frames) -> data.faces (MTCNN) -> data.store (face crops on disk)
          -> embeddings / models -> evaluation -> reporting
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up notices; set TF_CPP_MIN_LOG_LEVEL=0 to see them

__version__ = "0.1.0"
