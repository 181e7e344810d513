"""deepfake_keras: Detecting Deepfakes with Metric Learning (Kumar, Bhavsar, Verma, 2020) in Keras/TensorFlow.

Data flow (one folder per stage)::

    video -> data.video (sampled frames) -> data.faces (MTCNN) -> data.store (face crops on disk)
          -> embeddings / models -> evaluation -> reporting
"""
__version__ = "0.1.0"
