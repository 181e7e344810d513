"""Training: one resumable Keras fit (:mod:`.fit`), splits by video (:mod:`.splits`), the Xception
bags (:mod:`.bagging`), the triplet head (:mod:`.triplet`), the scikit-learn classifiers on its
embeddings (:mod:`.classifiers`) and cached Xception features (:mod:`.features`).

Import the modules themselves; this package imports nothing, so that importing it never loads
TensorFlow.
"""
