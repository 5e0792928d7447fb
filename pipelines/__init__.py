"""Beam pipelines: source readers, thin transforms over extractors, one wiring module per dataset."""
