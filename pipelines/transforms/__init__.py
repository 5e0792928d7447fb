"""Thin DoFns and PTransforms over the extractors, shared by every dataset."""
