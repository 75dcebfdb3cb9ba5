"""What reviewers see of a face: a sharp crop and its place in the frame.

The classifier sees crops at its input size (64 to 299 px); a reviewer needs
more.  For each evidence face :func:`build_views` cuts the same square
(``crop_box``, same margin) from the full-resolution frame at
``REVIEW_CROP_PX`` or more, and draws the face box on a downscaled copy of the
whole frame (who, where, in what scene).  A face smaller than the crop is
upscaled, which blurs it: the view records the source size so that the page
says so instead of passing the blur off as the video's.

Heatmaps are no longer built for reviewers (issue 22): the Grad-CAM maps of
the shipped models were a central blob on every crop, which tells a reviewer
nothing, so the Grad-CAM code was removed with them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model.faces import Face, crop_box, crop_face

#: Evidence crops are stored at least this wide, whatever the model's input size.
REVIEW_CROP_PX = 256
#: Long side of the stored full frame.
CONTEXT_MAX_SIDE = 640


@dataclass
class EvidenceView:
    """One evidence face as reviewers see it (uint8 RGB images)."""

    track_id: int
    frame_index: int
    box: tuple[int, int, int, int]
    crop: np.ndarray  # REVIEW_CROP_PX (or the model size, if larger), same framing as the model's
    context: np.ndarray  # the whole frame, downscaled, face box drawn
    #: Side of the crop square in the source frame (px): the crop's real resolution.
    source_px: int = 0

    @property
    def upscaled_from(self) -> int | None:
        """The source side in px when the stored crop is an upscale of it (blurry), else None."""
        return self.source_px if 0 < self.source_px < self.crop.shape[1] else None


def reviewer_crop(frame_rgb: np.ndarray, face: Face, input_size: int, margin: float) -> np.ndarray:
    return crop_face(frame_rgb, face, max(REVIEW_CROP_PX, int(input_size)), margin)


def context_frame(frame_rgb: np.ndarray, face: Face, margin: float) -> np.ndarray:
    """The frame shrunk to ``CONTEXT_MAX_SIDE``, with the face box (red) and crop square (white)."""
    import cv2

    h, w = frame_rgb.shape[:2]
    scale = min(1.0, CONTEXT_MAX_SIDE / max(h, w))
    image = frame_rgb[..., :3]
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    image = np.ascontiguousarray(image).copy()
    x, y, bw, bh = face.box
    left, top, side = crop_box(face, margin)
    thickness = max(2, round(max(image.shape[:2]) / 320))

    def pt(px: float, py: float) -> tuple[int, int]:
        return round(px * scale), round(py * scale)

    cv2.rectangle(image, pt(left, top), pt(left + side, top + side), (255, 255, 255), 1)
    cv2.rectangle(image, pt(x, y), pt(x + bw, y + bh), (230, 30, 30), thickness)
    return image


def build_views(
    faces: list[tuple[int, int, np.ndarray, Face]], input_size: int, margin: float
) -> list[EvidenceView]:
    """Views of ``faces`` = ``(track_id, frame_index, full frame, face)``."""
    views = []
    for track_id, frame_index, frame, face in faces:
        crop = reviewer_crop(frame, face, input_size, margin)
        views.append(
            EvidenceView(
                track_id=int(track_id),
                frame_index=int(frame_index),
                box=tuple(int(v) for v in face.box),  # type: ignore[arg-type]
                crop=crop,
                context=context_frame(frame, face, margin),
                source_px=crop_box(face, margin)[2],
            )
        )
    return views
