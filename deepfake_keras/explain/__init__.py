"""Looking inside the models: t-SNE of embeddings, Grad-CAM of the Xception classifier."""
