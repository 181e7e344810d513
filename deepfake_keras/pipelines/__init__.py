"""Experiment pipelines: each turns a dataset into a results folder (the scripts in experiments/ call them)."""
