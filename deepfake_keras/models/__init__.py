"""Keras builders and losses of the paper's models, one module each; nothing here trains or
touches the disk (training: :mod:`deepfake_keras.training`).

- :mod:`.triplet`: the triplet head on face embeddings, the semi-hard and random-pick triplet losses.
- :mod:`.dense`: the same head as a plain classifier (the paper's "without triplet" comparison).
- :mod:`.xception`: the Xception frame classifier (fc1 512-d features), the paper's Nadam.
- :mod:`.sequence`: the LSTM/GRU baseline on Xception features.
- :mod:`.conv3d`: the paper's Conv3D and a ConvLSTM on clips of face crops.

Import the modules themselves (``from deepfake_keras.models import triplet``):
this package imports nothing, so that importing it never loads TensorFlow.
"""
