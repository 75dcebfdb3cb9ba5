"""Self-Blended Images (Shiohara & Yamasaki, CVPR 2022): fakes made from real faces only.

A face swap pastes one face into another frame through a soft mask; the
detector's job is to find the seam (colour mismatch, a blurred boundary,
slightly misaligned geometry).  SBI reproduces exactly that seam without
any deepfake software: take a real face, make a *source* copy of it with
jittered colour, frequency content and geometry, and blend the source back
into the original through a soft, randomly deformed face mask.  The result
is a "fake" that carries only generic blending artefacts, so a detector
trained on it cannot overfit to one generator's fingerprint — and users
can train from real footage of their own channels.

The mask follows the paper: the convex hull of real facial landmarks
(468 face-mesh points, :mod:`model.training.landmarks`) — the whole face, or,
as the paper's hull variants do, the face below the brows or below the nose —
elastically deformed, randomly eroded or dilated and feathered.  When the
face mesh does not trust its points (a profile, a half-visible face) the mask
falls back to a face-shaped polygon grown from MTCNN's five keypoints.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from model.faces import KEYPOINT_NAMES

#: Polygon of the face region in a frame whose origin is the eye centre,
#: x in units of the inter-ocular distance and y in units of the eye-to-mouth
#: distance (forehead above the eyes, chin below the mouth).
_FACE_POLYGON = np.array(
    [
        (-0.95, -0.65),
        (0.0, -0.85),
        (0.95, -0.65),
        (1.05, 0.45),
        (0.65, 1.4),
        (0.0, 1.65),
        (-0.65, 1.4),
        (-1.05, 0.45),
    ],
    dtype=np.float32,
)
#: The paper's blend ratios: a third of fakes are partially transparent.
BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)


@dataclass(frozen=True)
class SelfBlend:
    """A self-blended image and the mask that made it (1 = source face pixel)."""

    image: np.ndarray  # uint8 H x W x 3
    mask: np.ndarray  # float32 H x W in [0, 1]
    blend_ratio: float


def keypoints_array(keypoints: dict[str, tuple[float, float]] | np.ndarray) -> np.ndarray:
    """Keypoints as a (5, 2) float32 array of (x, y) in ``KEYPOINT_NAMES`` order."""
    if isinstance(keypoints, dict):
        return np.array([keypoints[name] for name in KEYPOINT_NAMES], dtype=np.float32)
    arr = np.asarray(keypoints, dtype=np.float32)
    if arr.shape != (5, 2):
        raise ValueError(f"expected 5 (x, y) keypoints, got shape {arr.shape}")
    return arr


def face_polygon(keypoints: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """The face region polygon in image pixels; each vertex jittered by +-15% if ``rng``."""
    kp = keypoints_array(keypoints)
    left_eye, right_eye, _nose, mouth_left, mouth_right = kp
    eye_centre = (left_eye + right_eye) / 2
    mouth_centre = (mouth_left + mouth_right) / 2
    across = right_eye - left_eye
    down = mouth_centre - eye_centre
    # Guard against degenerate keypoints (a profile face): keep both axes non-zero.
    if np.linalg.norm(across) < 1:
        across = np.array([max(np.linalg.norm(down), 1.0), 0.0], dtype=np.float32)
    if np.linalg.norm(down) < 1:
        down = np.array([0.0, max(np.linalg.norm(across), 1.0)], dtype=np.float32)
    units = _FACE_POLYGON.copy()
    if rng is not None:
        units *= rng.uniform(0.85, 1.15, size=units.shape).astype(np.float32)
    return eye_centre + units[:, :1] * across + units[:, 1:] * down


def landmark_hull(points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A convex hull of 468 face-mesh points: the whole face (half the time) or part of it.

    The paper draws among hulls of the whole face and of its lower parts so
    the seam does not always run along the same contour; here the partial
    hulls keep the points below the brows, or below the nose tip, plus the
    lower face oval (the cheeks and the chin).
    """
    from model.training.landmarks import BROWS, NOSE_TIP

    points = np.asarray(points, dtype=np.float32)
    choice = rng.random()
    if choice < 0.5:
        chosen = points
    else:
        cut = float(points[list(BROWS), 1].mean()) if choice < 0.8 else float(points[NOSE_TIP, 1])
        chosen = points[points[:, 1] >= cut]
        if len(chosen) < 3:
            chosen = points
    return cv2.convexHull(np.round(chosen).astype(np.int32)).reshape(-1, 2)


def _elastic(hard: np.ndarray, face_size: float, rng: np.random.Generator) -> np.ndarray:
    """Deform a hard mask with a smooth random displacement field (the paper's elastic step)."""
    height, width = hard.shape
    sigma = max(face_size / 8.0, 1.0)
    amplitude = float(rng.uniform(0.02, 0.06)) * face_size
    fields = []
    for _ in range(2):
        noise = rng.standard_normal((height, width)).astype(np.float32)
        smooth = cv2.GaussianBlur(noise, (0, 0), sigmaX=sigma)
        smooth /= float(np.abs(smooth).max()) or 1.0
        fields.append(smooth * amplitude)
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(hard, xs + fields[0], ys + fields[1], cv2.INTER_LINEAR)


def face_mask(
    shape: tuple[int, int],
    keypoints: np.ndarray,
    rng: np.random.Generator,
    landmarks: np.ndarray | None = None,
) -> np.ndarray:
    """A soft face mask: landmark hull (or keypoint polygon), deformed, eroded/dilated, feathered.

    Values are in [0, 1]; 1 well inside the face, 0 well outside, with a
    random-width smooth transition that becomes the blending boundary.
    """
    height, width = shape
    if landmarks is not None:
        polygon = landmark_hull(landmarks, rng).astype(np.float32)
    else:
        polygon = face_polygon(keypoints, rng)
    hard = np.zeros((height, width), dtype=np.uint8)
    cv2.fillPoly(hard, [np.round(polygon).astype(np.int32)], 255)
    face_size = max(float(np.ptp(polygon[:, 0])), float(np.ptp(polygon[:, 1])), 1.0)
    if landmarks is not None:
        hard = _elastic(hard, face_size, rng)
    # Random erode or dilate by up to 8% of the face: varies where the seam lies.
    k = int(rng.integers(0, max(1, round(0.08 * face_size)) + 1))
    if k > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * k + 1, 2 * k + 1))
        hard = cv2.erode(hard, kernel) if rng.random() < 0.5 else cv2.dilate(hard, kernel)
    soft = hard.astype(np.float32) / 255.0
    sigma = float(rng.uniform(0.02, 0.07)) * face_size
    soft = cv2.GaussianBlur(soft, (0, 0), sigmaX=max(sigma, 0.5))
    peak = float(soft.max())
    return soft / peak if peak > 0 else soft


def _source_copy(image: np.ndarray, centre: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The jittered copy of the face that gets blended back in.

    Colour (per-channel shift, HSV, brightness/contrast), frequency
    (downscale-upscale or sharpen) and geometry (scale about the face centre
    and a small shift) — the three ways a pasted face mismatches its frame.
    """
    h, w = image.shape[:2]
    src = image.astype(np.float32)
    if rng.random() < 0.3:  # RGB shift, as the paper (p 0.3)
        src += rng.uniform(-20, 20, size=3).astype(np.float32)
    alpha, beta = rng.uniform(0.9, 1.1), rng.uniform(-10, 10)  # contrast, brightness
    src = np.clip(src * alpha + beta, 0, 255).astype(np.uint8)
    hsv = cv2.cvtColor(src, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-1, 1)) % 180  # a slight hue shift only
    hsv[..., 1] *= rng.uniform(0.8, 1.2)
    src = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB)
    if rng.random() < 0.5:
        factor = rng.uniform(0.5, 0.9)
        small = cv2.resize(
            src, (max(1, round(w * factor)), max(1, round(h * factor))), cv2.INTER_AREA
        )
        src = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    else:
        blurred = cv2.GaussianBlur(src, (0, 0), sigmaX=1.0)
        src = cv2.addWeighted(src, 1.5, blurred, -0.5, 0)
    scale = rng.uniform(0.95, 1.05)
    shift = rng.uniform(-0.03, 0.03, size=2) * np.array([w, h])
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), 0.0, scale)
    matrix[:, 2] += shift
    return cv2.warpAffine(src, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)


def self_blend(
    image: np.ndarray,
    keypoints: dict[str, tuple[float, float]] | np.ndarray,
    rng: np.random.Generator,
    landmarks: np.ndarray | None = None,
) -> SelfBlend:
    """Make one self-blended fake from a real face crop, its five keypoints and landmarks.

    ``landmarks`` are the crop's 468 face-mesh points (None: the keypoint
    polygon).  ``blended = source * m + image * (1 - m)`` with
    ``m = mask * ratio``: pixels where the mask is 0 are exactly the original.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 H x W x 3 image, got {image.dtype} {image.shape}")
    kp = keypoints_array(keypoints)
    ratio = float(rng.choice(BLEND_RATIOS))
    mask = face_mask(image.shape[:2], kp, rng, landmarks) * np.float32(ratio)
    source = _source_copy(image, kp.mean(axis=0), rng)
    m = mask[..., None]
    blended = source.astype(np.float32) * m + image.astype(np.float32) * (1.0 - m)
    out = np.clip(np.round(blended), 0, 255).astype(np.uint8)
    return SelfBlend(image=out, mask=mask, blend_ratio=ratio)
