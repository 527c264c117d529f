"""Annotation file formats (no Paddle, no OpenCV)."""
