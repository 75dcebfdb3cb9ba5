"""Frame sampling: even spread, seeking lands on the right frame, bad files are errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.media import encode
from model.frames import (
    VideoDecodeError,
    iter_media_paths,
    read_image,
    sample_frames,
    sample_indices,
)
from tests.model import synth


@pytest.fixture(scope="module")
def index_video(tmp_path_factory) -> Path:
    return synth.index_video(tmp_path_factory.mktemp("frames") / "index.mp4", n_frames=120)


def test_sample_indices_are_even_unique_and_in_range():
    indices = sample_indices(1800, 32)
    assert len(indices) == 32
    assert indices == sorted(set(indices))
    assert indices[0] > 0 and indices[-1] < 1799  # first and last frames are avoided
    gaps = np.diff(indices)
    assert gaps.min() >= 56 and gaps.max() <= 57  # 1800 / 32 = 56.25


def test_sample_indices_short_video_returns_every_frame_once():
    assert sample_indices(5, 32) == [0, 1, 2, 3, 4]
    assert sample_indices(0, 32) == []


def test_seeking_returns_the_requested_frames(index_video):
    sample = sample_frames(index_video, n=10)
    assert sample.requested == 10
    assert sample.decoded == 10
    assert sample.total_frames == 120
    assert sample.fps == pytest.approx(30.0)
    assert sample.indices == sample_indices(120, 10)
    # The pixels prove which frame was decoded: seeking is frame-accurate.
    assert [synth.decode_index(f) for f in sample.frames] == sample.indices
    assert sample.timestamps_s == [round(i / 30.0, 3) for i in sample.indices]


def test_dense_sampling_decodes_forward_and_stays_accurate(index_video):
    sample = sample_frames(index_video, n=60)  # gaps of 2 frames: sequential path
    assert sample.decoded == 60
    assert [synth.decode_index(f) for f in sample.frames] == sample.indices


def test_frames_are_rgb_uint8(index_video):
    frame = sample_frames(index_video, n=1).frames[0]
    assert frame.dtype == np.uint8 and frame.shape == (240, 320, 3)
    red = frame[150:230, 20:300].reshape(-1, 3).mean(axis=0)
    assert red[0] > 200 and red[1] < 50 and red[2] < 50  # red stays in channel 0


def test_more_frames_than_the_video_has(tmp_path):
    path = synth.index_video(tmp_path / "short.mp4", n_frames=5)
    sample = sample_frames(path, n=32)
    assert sample.requested == 32 and sample.decoded == 5
    assert [synth.decode_index(f) for f in sample.frames] == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    "content",
    [b"", b"this is not a video\n" * 50, bytes(range(256)) * 64],
    ids=["empty", "text", "random-bytes"],
)
def test_unreadable_files_are_decode_errors(tmp_path, content):
    path = tmp_path / "broken.mp4"
    path.write_bytes(content)
    with pytest.raises(VideoDecodeError, match=r"broken\.mp4"):
        sample_frames(path)


def test_truncated_video_is_a_decode_error(tmp_path, index_video):
    path = tmp_path / "truncated.mp4"
    path.write_bytes(index_video.read_bytes()[: index_video.stat().st_size // 2])
    with pytest.raises(VideoDecodeError, match=r"truncated\.mp4"):
        sample_frames(path)


def test_image_with_a_video_extension_decodes_as_one_frame(tmp_path):
    path = tmp_path / "picture.mp4"
    _, encoded = cv2.imencode(".png", cv2.cvtColor(synth.astronaut(), cv2.COLOR_RGB2BGR))
    path.write_bytes(encoded.tobytes())
    sample = sample_frames(path, n=4)  # FFmpeg's image demuxer: a one-frame stream
    assert (sample.decoded, sample.total_frames) == (1, 1)
    assert np.array_equal(sample.frames[0], synth.astronaut())


def test_missing_file(tmp_path):
    with pytest.raises(VideoDecodeError, match="no such file"):
        sample_frames(tmp_path / "nope.mp4")


def test_read_image_is_rgb(tmp_path):
    rgb = synth.astronaut()
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert np.array_equal(read_image(path), rgb)


def test_read_image_rejects_corrupt_files(tmp_path):
    path = tmp_path / "bad.jpg"
    path.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(VideoDecodeError, match=r"bad\.jpg"):
        read_image(path)


def test_iter_media_paths_expands_directories(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("b.mp4", "a.webm", "sub/c.jpg", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    explicit = tmp_path / "notes.txt"
    found = list(iter_media_paths([tmp_path, explicit]))
    assert found == [tmp_path / "a.webm", tmp_path / "b.mp4", tmp_path / "sub/c.jpg", explicit]


@pytest.fixture(scope="module")
def h264_index_video(tmp_path_factory) -> Path:
    """120 numbered frames in H.264 with one keyframe: a seek decodes from frame 0."""
    path = tmp_path_factory.mktemp("h264") / "index-h264.mp4"
    frames = synth.index_frames(120)
    noise = np.random.default_rng(0)
    for frame in frames:  # texture below the numbers: the moov atom is a small part of the file
        frame[120:] = noise.integers(0, 256, frame[120:].shape, dtype=np.uint8)
    return encode(path, frames, gop=250)


def test_long_gop_h264_reads_forward_and_lands_on_the_requested_frames(h264_index_video):
    from model.frames import packet_index

    assert packet_index(h264_index_video).keyframes == [0]
    sample = sample_frames(h264_index_video, n=12)
    assert sample.decoded == 12 and not sample.failed_indices
    assert [synth.decode_index(f) for f in sample.frames] == sample.indices


def test_truncated_faststart_h264_counts_only_distinct_frames(tmp_path, h264_index_video):
    """Issue 21 item 1: OpenCV answers seeks past the end of a cut faststart file with the
    last good frame again; those repeats must count as failed, so the result is partial."""
    data = h264_index_video.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 8])
    sample = sample_frames(cut, n=32)
    numbers = [synth.decode_index(f) for f in sample.frames]
    assert len(set(numbers)) == len(numbers) == sample.decoded  # no frame twice
    assert numbers == sample.indices
    assert sample.decoded < 16 and len(sample.failed_indices) == 32 - sample.decoded


def test_a_file_cut_after_its_header_is_truncated_however_many_frames_decode(
    tmp_path, h264_index_video
):
    """Issue 30 item 5: a faststart MP4 cut at 70 % still decodes 22 of 32 samples (more
    than half), but its container promises 120 frames and holds 84: truncated.  The same
    for a WebM (no frame count: its duration says it); the whole files are not."""
    data = h264_index_video.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 7 // 10])
    sample = sample_frames(cut, n=32)
    assert sample.decoded >= 16 and sample.failed_indices and sample.truncated
    assert not sample_frames(h264_index_video, n=32).truncated

    webm = encode(tmp_path / "index.webm", synth.index_frames(90), codec="libvpx-vp9", gop=30)
    assert not sample_frames(webm, n=32).truncated
    data = webm.read_bytes()
    cut_webm = tmp_path / "cut.webm"
    cut_webm.write_bytes(data[: len(data) * 6 // 10])
    sample = sample_frames(cut_webm, n=32)
    assert sample.decoded >= 16 and sample.truncated


def test_short_gops_read_only_the_keyframes_nearest_the_samples(tmp_path):
    """Issue 19 item 3: with a keyframe near every sampled position, the sampler decodes
    just those keyframes (PyAV, one seek each); the spread stays even."""
    from model.frames import packet_index, snap_to_keyframes

    path = encode(tmp_path / "gop10.mp4", synth.index_frames(120), gop=10)
    keys = packet_index(path).keyframe_positions()
    assert [index for index, _pts in keys] == list(range(0, 120, 10))
    assert [k for k, _ in snap_to_keyframes(sample_indices(120, 4), keys, 120)] == [10, 40, 70, 100]
    assert snap_to_keyframes(sample_indices(120, 40), keys, 120) is None  # denser than the GOPs
    sample = sample_frames(path, n=4)
    assert sample.indices == [10, 40, 70, 100] and sample.decoded == 4
    assert [synth.decode_index(f) for f in sample.frames] == sample.indices
    assert sample.timestamps_s == [round(i / 30.0, 3) for i in sample.indices]
    dense = sample_frames(path, n=40)  # not snapped: every third frame, exactly
    assert dense.indices == sample_indices(120, 40)
    assert [synth.decode_index(f) for f in dense.frames] == dense.indices


def test_sparse_samples_let_the_decoder_skip_unreferenced_frames(tmp_path):
    """Issue 19 item 3: with samples 10 frames apart in a long-GOP H.264 file (B-frames, one
    keyframe), the decoder skips the frames nothing refers to; each sample is then the
    decoded frame nearest its target: at most a frame away, each one distinct, the pixels
    those of the index reported."""
    frames = synth.index_frames(240)
    noise = np.random.default_rng(1)
    for frame in frames:  # motion below the numbers: the encoder uses B-frames
        frame[120:] = noise.integers(0, 256, frame[120:].shape, dtype=np.uint8)
    path = encode(tmp_path / "bframes.mp4", frames, gop=250)
    wanted = sample_indices(240, 24)
    sample = sample_frames(path, n=24)
    assert sample.decoded == 24 and not sample.failed_indices
    assert [synth.decode_index(f) for f in sample.frames] == sample.indices
    assert sample.indices == sorted(set(sample.indices))
    offsets = [got - want for got, want in zip(sample.indices, wanted, strict=True)]
    assert max(abs(o) for o in offsets) <= 1
    assert any(offsets), "no sample moved: the decoder decoded every frame"
    assert sample.timestamps_s == [round(i / 30.0, 3) for i in sample.indices]


@pytest.mark.parametrize("gop", [10, 250], ids=["keyframes", "forward"])
@pytest.mark.parametrize("degrees", [90, 180, -90])
def test_phone_videos_come_out_upright_as_opencv_shows_them(tmp_path, degrees, gop):
    """A rotation stored in the container (phone uploads) is applied by OpenCV when it
    reads; both PyAV readers (keyframes only, forward) must give the same upright picture."""
    import subprocess

    import imageio_ffmpeg

    frames = synth.index_frames(90)
    for frame in frames:
        frame[120:, :40] = (0, 255, 0)  # an asymmetric mark: a wrong turn changes pixels
    plain = encode(tmp_path / "plain.mp4", frames, gop=gop)
    turned = tmp_path / "turned.mp4"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-display_rotation",
         str(degrees), "-i", str(plain), "-c", "copy", str(turned)],
        check=True,
    )  # fmt: skip
    sample = sample_frames(turned, n=4)
    capture = cv2.VideoCapture(str(turned))
    for index, frame in zip(sample.indices, sample.frames, strict=True):
        capture.set(cv2.CAP_PROP_POS_FRAMES, index)
        ok, expected = capture.read()
        assert ok and frame.shape == expected.shape
        assert np.abs(frame.astype(int) - expected[..., ::-1].astype(int)).mean() < 2
    capture.release()
