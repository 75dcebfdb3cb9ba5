"""Group face detections across sampled frames into per-person tracks.

A video with several people must be judged per person: one swapped face
next to a real one should not be diluted by averaging the two.  Sampled
frames are far apart (32 frames over a minute is one every ~2 s), so faces
move between samples; a detection joins a track when its box overlaps the
track's last box (IoU) *or* its centre is close relative to the face size.

Association is greedy, best match first, one detection per track per frame.
A track that has not been matched for ``max_gap`` sampled frames is closed,
so a person who leaves and a different one who enters at the same spot later
are not merged after a long absence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from model.faces import Face

#: Minimum IoU for a detection to continue a track.
IOU_MATCH = 0.3
#: ...or maximum centre distance, in units of the larger of the two face sizes.
CENTRE_MATCH = 0.6
#: Sampled frames a track may go unmatched before it is closed.
MAX_GAP = 4


@dataclass
class Track:
    """The detections of one person: parallel lists, ordered by sampled frame."""

    track_id: int
    frame_positions: list[int] = field(default_factory=list)  # position in the sample
    faces: list[Face] = field(default_factory=list)

    @property
    def last_face(self) -> Face:
        return self.faces[-1]

    def __len__(self) -> int:
        return len(self.faces)


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two x, y, w, h boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def centre_gap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Distance between two (x, y, w, h) boxes' centres, in pixels."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    dx = (ax + aw / 2) - (bx + bw / 2)
    dy = (ay + ah / 2) - (by + bh / 2)
    return (dx * dx + dy * dy) ** 0.5


def centre_distance(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Distance between box centres, in units of the larger box side."""
    return centre_gap(a, b) / max(a[2], a[3], b[2], b[3], 1)


def _affinity(track_box: tuple[int, int, int, int], box: tuple[int, int, int, int]) -> float:
    """A match score > 0 when the boxes may be the same face, higher is better; else 0."""
    overlap = iou(track_box, box)
    distance = centre_distance(track_box, box)
    if overlap < IOU_MATCH and distance > CENTRE_MATCH:
        return 0.0
    return overlap + (1.0 - min(distance, 1.0))


def build_tracks(detections: list[list[Face]], max_gap: int = MAX_GAP) -> list[Track]:
    """Link per-frame detections (one list per sampled frame, in time order) into tracks.

    Returns tracks ordered by id (the order in which they first appear).
    """
    tracks: list[Track] = []
    for position, faces in enumerate(detections):
        open_tracks = [t for t in tracks if position - t.frame_positions[-1] <= max_gap]
        candidates = []
        for ti, track in enumerate(open_tracks):
            for fi, face in enumerate(faces):
                score = _affinity(track.last_face.box, face.box)
                if score > 0:
                    candidates.append((score, ti, fi))
        candidates.sort(reverse=True)
        used_tracks: set[int] = set()
        used_faces: set[int] = set()
        for _, ti, fi in candidates:
            if ti in used_tracks or fi in used_faces:
                continue
            used_tracks.add(ti)
            used_faces.add(fi)
            open_tracks[ti].frame_positions.append(position)
            open_tracks[ti].faces.append(faces[fi])
        for fi, face in enumerate(faces):
            if fi not in used_faces:
                tracks.append(Track(len(tracks), [position], [face]))
    return tracks


#: Two tracks are one face when their typical boxes overlap at least this much...
MERGE_IOU = 0.5


def _median_box(track: Track) -> tuple[int, int, int, int]:
    boxes = [face.box for face in track.faces]
    return tuple(int(v) for v in sorted(boxes, key=lambda b: b[0])[len(boxes) // 2])  # type: ignore[return-value]


def merge_split_tracks(tracks: list[Track]) -> list[Track]:
    """Join tracks of the same face at the same place that the gap rule split.

    A picture on the wall is missed by MTCNN in some frames (a person walks in
    front of it, motion blur, a confidence just under the cut) and, after more
    than ``MAX_GAP`` missed frames, reappears as a new track: one photo became
    two tracks in DFDC clip ``yhffcuhhjy``.  Tracks that never share a sampled
    frame and whose median boxes overlap by ``MERGE_IOU`` are the same face in
    the same place; they are merged, earliest first, and renumbered.
    """
    merged: list[Track] = []
    for track in sorted(tracks, key=lambda t: t.frame_positions[0]):
        for target in merged:
            if set(target.frame_positions) & set(track.frame_positions):
                continue
            if iou(_median_box(target), _median_box(track)) >= MERGE_IOU:
                pairs = sorted(
                    zip(
                        target.frame_positions + track.frame_positions,
                        target.faces + track.faces,
                        strict=True,
                    ),
                    key=lambda p: p[0],
                )
                target.frame_positions = [p for p, _ in pairs]
                target.faces = [f for _, f in pairs]
                break
        else:
            merged.append(Track(track.track_id, list(track.frame_positions), list(track.faces)))
    for number, track in enumerate(merged):
        track.track_id = number
    return merged
