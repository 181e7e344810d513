"""Models of the paper, one module each.

- :mod:`.triplet`: the triplet head on face embeddings (semi-hard and random-pick
  triplet losses), its balanced batch sampler, training and embedding.
- :mod:`.classifiers`: Random Forest and SGD on the triplet embeddings.
- :mod:`.xception`: the Xception frame classifier (fc1 512-d features), the paper's Nadam,
  the tf.data pipeline of face crops (bagging: :mod:`deepfake_keras.training`).
- :mod:`.sequence`: sequences of consecutive stored faces per video (padding / dropping of
  short videos), the LSTM/GRU baseline on Xception features, the feature cache.
- :mod:`.conv3d`: the paper's Conv3D and a ConvLSTM on clips of face crops.

Import the modules themselves (``from deepfake_keras.models import triplet``):
this package imports nothing, so that importing it never loads TensorFlow.
"""
