"""mmfeat: multimodal data preparation and feature extraction on Apache Beam."""

__version__ = "0.1.0"
