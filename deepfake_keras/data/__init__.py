"""Datasets, frames, faces and the face store: everything before a model sees a pixel."""
