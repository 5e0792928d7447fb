"""Readers for datasets in their real on-disk layouts (pure Python, no Beam)."""
