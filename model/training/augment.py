"""Training augmentations that mimic what YouTube does to a video.

A detector that only ever saw pristine crops learns compression-fragile
cues and fails on re-encoded uploads.  Each augmentation below reproduces
one thing that happens between a deepfake's creation and our scanner:

* JPEG re-compression at a random quality (block artefacts, lost detail);
* saturation / brightness jitter (colour grading, different encoders);
* horizontal flip (mirrored re-uploads; also a free 2x on pose variety);
* unsharp masking (in-camera and editing sharpening: studio photos and phone
  footage are crisper than DFDC's re-encoded frames, and self-blends sharpen
  their source half of the time — sharpening the whole image, real or fake,
  keeps "crisp" from reading as "fake" while the blend's local mismatch stays);
* Gaussian blur and downscale-upscale (YouTube's lower-resolution renditions).

All functions take and return uint8 RGB ``H x W x 3`` arrays and draw their
randomness from an explicit ``numpy.random.Generator`` so that a seed makes
an epoch reproducible.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np


def jpeg_recompress(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode to JPEG at ``quality`` (1-100) and decode again."""
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # pragma: no cover - OpenCV only fails on invalid input
        return image
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def color_jitter(image: np.ndarray, saturation: float, brightness: float) -> np.ndarray:
    """Scale saturation by ``saturation`` and value (brightness) by ``brightness``."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 1] *= saturation
    hsv[..., 2] *= brightness
    hsv = np.clip(hsv, 0, 255).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def hflip(image: np.ndarray) -> np.ndarray:
    """Mirror left-right."""
    return np.ascontiguousarray(image[:, ::-1])


def sharpen(image: np.ndarray, amount: float, sigma: float = 1.0) -> np.ndarray:
    """Unsharp mask: ``image + amount * (image - blur(image))``."""
    if amount <= 0:
        return image
    blurred = cv2.GaussianBlur(image, (0, 0), sigmaX=float(sigma))
    return cv2.addWeighted(image, 1.0 + amount, blurred, -float(amount), 0)


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Blur with a Gaussian of standard deviation ``sigma`` pixels."""
    if sigma <= 0:
        return image
    return cv2.GaussianBlur(image, (0, 0), sigmaX=float(sigma))


def downscale(image: np.ndarray, factor: float) -> np.ndarray:
    """Shrink by ``factor`` (0 < factor <= 1) and scale back up: a low-resolution rendition."""
    if factor >= 1:
        return image
    h, w = image.shape[:2]
    small = cv2.resize(
        image, (max(1, round(w * factor)), max(1, round(h * factor))), interpolation=cv2.INTER_AREA
    )
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def fill_padding(
    image: np.ndarray, valid: tuple[int, int, int, int], rng: np.random.Generator
) -> np.ndarray:
    """Replace the black padding around ``valid`` (x0, y0, x1, y1) with a random fill.

    Re-framed tight crops (``model.training.cache``) are black wherever the scanner's
    margin reached past the source image, while the scanner's own crops show
    background there.  Training always on black would let the network treat
    any background in that ring as unfamiliar evidence; varying the fill —
    black, the image's edge smeared outwards and blurred, or a flat colour
    with sensor-like noise — teaches it that the ring carries no label.
    """
    x0, y0, x1, y1 = (int(v) for v in valid)
    h, w = image.shape[:2]
    if x1 - x0 < 2 or y1 - y0 < 2 or (x0 <= 0 and y0 <= 0 and x1 >= w and y1 >= h):
        return image
    inner = image[y0:y1, x0:x1]
    kind = rng.integers(3)
    if kind == 0:
        return image
    if kind == 1:
        filled = cv2.copyMakeBorder(inner, y0, h - y1, x0, w - x1, cv2.BORDER_REPLICATE)
        filled = cv2.GaussianBlur(filled, (0, 0), sigmaX=float(rng.uniform(2.0, 6.0)))
    else:
        colour = inner.reshape(-1, 3).mean(axis=0) * rng.uniform(0.5, 1.2)
        noise = rng.normal(0.0, rng.uniform(2.0, 12.0), size=image.shape)
        filled = np.clip(colour + noise, 0, 255).astype(np.uint8)
    out = filled.copy()
    out[y0:y1, x0:x1] = inner
    return out


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges of each augmentation (defaults tuned for YouTube)."""

    p_jpeg: float = 0.5
    jpeg_quality: tuple[int, int] = (40, 95)
    p_color: float = 0.5
    saturation: tuple[float, float] = (0.7, 1.3)
    brightness: tuple[float, float] = (0.75, 1.25)
    p_flip: float = 0.5
    p_sharpen: float = 0.3
    sharpen_amount: tuple[float, float] = (0.3, 1.0)
    sharpen_sigma: tuple[float, float] = (0.8, 1.5)
    p_blur: float = 0.2
    blur_sigma: tuple[float, float] = (0.3, 1.5)
    p_downscale: float = 0.2
    downscale_factor: tuple[float, float] = (0.4, 0.9)
    #: Re-framed tight crops: probability of a non-black padding (see ``fill_padding``).
    p_fill: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)


NO_AUGMENT = AugmentConfig(
    p_jpeg=0, p_color=0, p_flip=0, p_sharpen=0, p_blur=0, p_downscale=0, p_fill=0
)


def augment(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """Apply each augmentation with its probability, in the order a video experiences them.

    Geometry first (flip), then capture-side changes (colour, sharpening), then
    delivery-side losses (downscale, blur) and finally the re-encode (JPEG),
    which must come last because it is the last thing YouTube does.
    """
    out = image
    if rng.random() < config.p_flip:
        out = hflip(out)
    if rng.random() < config.p_color:
        out = color_jitter(out, rng.uniform(*config.saturation), rng.uniform(*config.brightness))
    if rng.random() < config.p_sharpen:
        out = sharpen(out, rng.uniform(*config.sharpen_amount), rng.uniform(*config.sharpen_sigma))
    if rng.random() < config.p_downscale:
        out = downscale(out, rng.uniform(*config.downscale_factor))
    if rng.random() < config.p_blur:
        out = gaussian_blur(out, rng.uniform(*config.blur_sigma))
    if rng.random() < config.p_jpeg:
        lo, hi = config.jpeg_quality
        out = jpeg_recompress(out, int(rng.integers(lo, hi + 1)))
    return out
