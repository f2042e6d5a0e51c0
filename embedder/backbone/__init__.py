"""Backbone networks ported from PyTorch, and the torch-free reader of their weight files."""
