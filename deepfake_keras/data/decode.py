"""Reading video with PyAV (FFmpeg's libraries, bundled in the ``av`` wheel): safely, and only the
packets that the sampled frames need.

**Only plain local media files.** A file is opened as ``file:<absolute path>``, never as a URL
(``concat:x.mp4`` and ``pipe:x.mp4`` are file names here), with FFmpeg's protocol whitelist set
to ``file`` and its demuxer whitelist set to every demuxer of this build except those that open
other files or URLs (:data:`DENIED_DEMUXERS`: playlists, concat lists, image sequences, session
descriptions, capture devices, and formats that open the files beside them: VobSub indexes, Magic
Lantern video). FFmpeg checks the demuxer whitelist after probing the content and before the
demuxer reads anything, so a playlist is refused, whatever its extension, without opening what it
lists (or anything beside it); it is reported as :data:`NOT_PLAIN`.

**Sparse decoding.** :func:`index_packets` reads the packets of the video stream once without
decoding them (their timestamps, key-frame flags and, for H.264/HEVC, whether a key frame is an
IDR/IRAP picture decoding can start at). Frame ``i`` is the ``i``-th frame in presentation order,
exactly the ``i``-th frame a full in-order decode outputs. :func:`decode_sparse` then decodes
only segments of packets, each from a start point to the last sampled frame it serves: packets
of frames that are neither sampled nor referenced are dropped by the decoder itself
(``skip_frame`` NONREF), frames not kept are never converted or copied, and between segments it
jumps to the next start point (reading past the packets in between, or seeking when the gap is
large). Decoding from such a start point gives the same frames as decoding from the beginning
once the decoder has seen the first packet (FFmpeg's H.264 decoder takes the x264 version from it
and works around old x264 bugs: FF++ c23 clips, 4:4:4 from x264 core 148, decode to garbage after
a seek without it, which is what "corrupt frames after seeking in 519.mp4" was), so the first
packet is always decoded first and the frames returned are bit-identical to a full in-order
decode; anything unexpected (a
sampled frame that does not arrive, a decoding error) makes the caller decode in order instead
(:func:`iter_decoded`), which is also the path for containers and codecs where one packet is
not always one frame.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np


class VideoError(ValueError):
    """A video that cannot be read; the message names the file and the problem."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class CannotOpen(Exception):
    """PyAV could not open the file as media (not a refusal: another decoder may try it)."""


class SparseFailed(Exception):
    """Sparse decoding met something it does not handle; decode in order instead."""


NOT_PLAIN = "not a plain media file (a playlist or a list of other files or URLs, which is never followed)"
NOT_A_VIDEO = "cannot be opened as a video (not a video, or an unsupported or corrupt container)"
NO_FRAME = "no frame could be decoded (truncated or corrupt video)"

#: demuxers that open other files or URLs (or devices): never used, whatever the file is called. Audited
#: against PyAV 18.1's FFmpeg (``av.formats_available``): the other demuxers read only the input itself
#: (``mov`` follows external data references only with ``enable_drefs``, off by default; demuxers nested
#: inside another, e.g. HLS segments, inherit the whitelists).
DENIED_DEMUXERS = frozenset({
    "hls", "applehttp",  # HLS playlists: open every segment and sub-playlist they list
    "dash",  # DASH manifests: open the representations they list
    "webm_dash_manifest",  # WebM read only for a DASH manifest's muxer: never a video to sample
    "concat",  # ffconcat lists: open every file they list
    "imf",  # IMF composition playlists: open the asset map and the MXF tracks it names
    "image2",  # image sequences: open img%03d.png..., every file matching a pattern
    "vobsub",  # a VobSub index (.idx): opens the .sub file beside it (same name, its last 3 letters "sub")
    "mlv",  # Magic Lantern video: opens <name>.m00 ... <name>.m99 beside it (its name's last 2 letters replaced)
    "sdp", "rtp", "rtsp", "sap",  # session descriptions and streams: open network URLs
    "avisynth", "vapoursynth",  # scripts: run code that opens any file
    "dvdvideo", "bluray", "libcdio",  # discs: open the disc's other files or a device
    "lavfi",  # filter graphs: movie=/amovie= open any file or URL
    "video4linux2", "v4l2", "x11grab", "xcbgrab", "fbdev", "kmsgrab", "alsa", "oss", "pulse", "jack",  # devices
    "openal", "sndio", "decklink", "libdc1394", "iec61883", "android_camera", "dshow", "vfwcap", "gdigrab",
    "avfoundation",
})
#: first bytes of files that FFmpeg reads as lists of other files or URLs, or as an index of files beside
#: them (VobSub, Magic Lantern video): refused before FFmpeg sees them (the whitelist refuses them too)
PLAYLIST_MAGIC = (b"#EXTM3U", b"ffconcat version", b"<?xml", b"<MPD", b"v=0", b"# VobSub index file", b"MLVI")
#: codecs and containers where one packet is one frame with a reliable pts: sparse decoding applies
SPARSE_CODECS = frozenset({"h264", "hevc", "vp9", "av1", "mjpeg", "prores"})
SPARSE_CONTAINERS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"})
#: start a new segment (jump) rather than decode through a gap of more packets than this
THROUGH_GAP = 12
#: seek rather than read past the packets before a start point when they span more bytes than this
SEEK_MIN_BYTES = 8 << 20
#: errors that mean "this build cannot decode this codec", not "this file is broken"
UNSUPPORTED_ERRNOS = frozenset({38})  # ENOSYS: e.g. FFmpeg's own AV1 decoder without a hardware decoder


def unsupported(codec: str, decoder: str = "PyAV") -> str:
    return f"codec {codec} not supported by this build of {decoder}"


# --------------------------------------------------------------------------- opening safely

@lru_cache(maxsize=None)
def allowed_demuxers() -> str:
    """FFmpeg's ``format_whitelist``: every demuxer of this PyAV build but :data:`DENIED_DEMUXERS`."""
    import av

    names = set()
    for name in av.formats_available:
        try:
            fmt = av.ContainerFormat(name, "r")
        except ValueError:  # a muxer only
            continue
        if not set(fmt.name.split(",")) & DENIED_DEMUXERS:
            names.add(fmt.name)
    return ",".join(sorted(names))


def open_options() -> dict:
    """Options every media file is opened with: local files only, no demuxer that opens others, and MP4/MOV
    data references to other files not followed (``enable_drefs`` 0, FFmpeg's default, said explicitly)."""
    return {"protocol_whitelist": "file", "format_whitelist": allowed_demuxers(), "enable_drefs": "0"}


def media_url(path) -> str:
    """``file:`` and the absolute path: FFmpeg never reads a file name as another protocol's URL."""
    return "file:" + os.path.abspath(os.fspath(path))


def looks_like_playlist(path) -> bool:
    """Whether the file starts like a playlist, a concat list, a session description (text that FFmpeg
    would read as a list of other files or URLs), a VobSub index or a Magic Lantern video (which make
    it open the files beside them)."""
    with open(path, "rb") as f:
        head = f.read(64)
    head = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    return head.startswith(PLAYLIST_MAGIC)


def check_file(path) -> Path:
    """``path`` if it is a non-empty regular file, else :class:`VideoError` saying what it is."""
    path = Path(path)
    if not path.exists():
        raise VideoError(path, "dangling symbolic link (or a link loop)" if path.is_symlink() else "file not found")
    if not path.is_file():
        raise VideoError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise VideoError(path, "empty file (0 bytes)")
    return path


def open_container(path):
    """The PyAV input container of the file at ``path``, opened with :func:`open_options`.

    Raises :class:`VideoError` (:data:`NOT_PLAIN`) for a file refused by the whitelists or that
    starts like a playlist, and :class:`CannotOpen` for one PyAV cannot read as media.
    """
    import av

    path = check_file(path)
    if looks_like_playlist(path):
        raise VideoError(path, NOT_PLAIN)
    try:
        return av.open(media_url(path), options=open_options())
    except av.error.ArgumentError as e:  # EINVAL: the probed demuxer is not on the whitelist
        raise VideoError(path, NOT_PLAIN) from e
    except av.error.FFmpegError as e:
        raise CannotOpen(str(e)) from e


def video_stream(container, path):
    """The first video stream of ``container`` with a decoder set up (threads on); :class:`VideoError`
    if there is none or this build cannot decode it."""
    import av

    if not container.streams.video:
        raise VideoError(path, NOT_A_VIDEO)
    stream = container.streams.video[0]
    for other in container.streams:
        if other is not stream:
            other.discard = av.stream.Discard.all  # the demuxer skips their packets
    if stream.codec_context is None:  # no decoder in this build
        raise VideoError(path, unsupported("of this stream"))
    try:
        stream.codec_context.thread_type = "AUTO"
        stream.codec_context.thread_count = 0
    except av.error.FFmpegError:
        pass
    return stream


def codec_name(stream) -> str:
    return stream.codec_context.codec.canonical_name


# --------------------------------------------------------------------------- the packet index

@dataclass
class PacketIndex:
    """The packets of a video stream in decode order (numpy arrays) and the frames in presentation order.

    ``order[i]`` is the decode position of frame ``i`` (frames: packets not flagged discard, sorted
    by pts); ``start[j]``: decoding may start at packet ``j`` (a random access point); ``sparse``:
    one packet is one frame with a known, unique pts, so :func:`decode_sparse` applies.
    """

    pts: np.ndarray
    start: np.ndarray
    pos: np.ndarray
    order: np.ndarray
    sparse: bool

    @property
    def count(self) -> int:
        return len(self.order)


def index_packets(container, stream) -> PacketIndex:
    """Read every packet of ``stream`` once, without decoding (see :class:`PacketIndex`); leaves the
    container at its end."""
    codec = codec_name(stream)
    nal = _nal_reader(codec, stream.codec_context.extradata)
    pts, start, pos, keep = [], [], [], []
    missing = False
    packets = Demuxer(container, stream)
    for packet in packets:
        if packet.size == 0:
            continue
        if packet.pts is None:
            missing = True
        pts.append(packet.pts if packet.pts is not None else -1)
        key = packet.is_keyframe
        start.append(key and (nal is None or nal(bytes(packet))))
        pos.append(packet.pos if packet.pos is not None else -1)
        keep.append(not packet.is_discard)
    pts_a = np.asarray(pts, np.int64)
    frames = np.flatnonzero(np.asarray(keep, bool))
    sparse = (not missing and packets.failed is None and codec in SPARSE_CODECS
              and container.format.name in SPARSE_CONTAINERS and len(np.unique(pts_a[frames])) == len(frames))
    order = frames[np.argsort(pts_a[frames], kind="stable")] if sparse else frames
    return PacketIndex(pts_a, np.asarray(start, bool), np.asarray(pos, np.int64), order, sparse)


class Demuxer:
    """The packets of one stream; a read error ends them (kept in ``failed``) instead of raising,
    so that a file broken half-way still gives the frames before the break."""

    def __init__(self, container, stream):
        self.packets = container.demux(stream)
        self.failed = None

    def __iter__(self):
        return self

    def __next__(self):
        import av

        try:
            return next(self.packets)
        except av.error.FFmpegError as e:
            self.failed = e
            raise StopIteration from None


def _nal_reader(codec: str, extradata):
    """For H.264/HEVC: a function telling whether a key-frame packet holds an IDR/IRAP picture
    (decoding can start there); None for other codecs (their key frames are start points)."""
    if codec not in ("h264", "hevc"):
        return None
    hevc = codec == "hevc"
    extradata = bytes(extradata or b"")
    size = None  # NAL length prefix size (avcC/hvcC), None for Annex B start codes
    if extradata[:1] == b"\x01":
        if not hevc and len(extradata) >= 5:
            size = (extradata[4] & 3) + 1
        elif hevc and len(extradata) >= 23:
            size = (extradata[21] & 3) + 1
    starts = {5} if not hevc else set(range(16, 22))  # IDR; BLA, IDR, CRA

    def types(data: bytes):
        if size:
            i = 0
            while i + size < len(data):
                n = int.from_bytes(data[i:i + size], "big")
                i += size
                if n <= 0:
                    return
                yield (data[i] >> 1) & 0x3F if hevc else data[i] & 0x1F
                i += n
        else:
            i = data.find(b"\x00\x00\x01")
            while 0 <= i < len(data) - 3:
                b = data[i + 3]
                yield (b >> 1) & 0x3F if hevc else b & 0x1F
                i = data.find(b"\x00\x00\x01", i + 3)

    return lambda data: any(t in starts for t in types(data))


# --------------------------------------------------------------------------- the plan

def plan_segments(index: PacketIndex, wanted: list, seek) -> list:
    """``[(first, last)]`` decode positions to decode for frames ``wanted`` (presentation indices).

    Each sampled frame needs the packets from the start point before it (``start`` and a pts not
    after the frame's, so that it is not a leading picture of that start point) to its own packet.
    ``seek=False``: one segment from the first packet (an in-order decode up to the last sampled
    frame); ``seek=True``: a new segment whenever the next start point lies past the decoded
    ones; ``seek=None``: also decode through gaps of up to :data:`THROUGH_GAP` packets.
    """
    if not wanted:
        return []
    positions = index.order[np.asarray(wanted)]
    if seek is False:
        return [(0, int(positions.max()))]
    starts = np.flatnonzero(index.start)
    need = []
    for d in sorted(int(p) for p in positions):
        k = int(np.searchsorted(starts, d, side="right")) - 1
        while k >= 0 and index.pts[starts[k]] > index.pts[d]:
            k -= 1
        need.append((int(starts[k]) if k >= 0 else 0, d))
    gap = 0 if seek else THROUGH_GAP
    segments = []
    for first, last in sorted(need):
        if segments and first <= segments[-1][1] + 1 + gap:
            segments[-1][1] = max(segments[-1][1], last)
        else:
            segments.append([first, last])
    return [(a, b) for a, b in segments]


# --------------------------------------------------------------------------- decoding

def decode_sparse(container, stream, index: PacketIndex, wanted: list, convert, seek=None) -> dict:
    """``{frame index: convert(frame index, frame)}`` for the frames ``wanted`` (presentation indices), decoding
    only the segments of :func:`plan_segments`. Raises :class:`SparseFailed` when a sampled frame
    does not arrive or decoding fails (decode in order instead)."""
    import av

    cc = stream.codec_context
    rank = {int(index.pts[index.order[i]]): i for i in wanted}
    wanted_positions = {int(index.order[i]) for i in wanted}
    got = {}

    def take(frames):
        for frame in frames:
            i = rank.get(frame.pts)
            if i is not None and i not in got:
                got[i] = convert(i, frame)

    segments = plan_segments(index, wanted, seek)
    packets, position = _rewind(container, stream, index)
    try:
        if segments and segments[0][0] > 0:
            # the decoder keeps state that a start point does not reset: FFmpeg's H.264 decoder reads the
            # x264 build from the first packet and works around that build's bugs (4:4:4 streams of old
            # x264 builds, as FF++ c23 is, decode to garbage without it). Decode the first packet first.
            take(cc.decode(next(packets)))
            position = 1
            take(cc.decode(None))
            cc.flush_buffers()
        for first, last in segments:  # sorted and apart: ``position`` (the next packet) is never past ``first``
            if first > position and (seek or (seek is None and _gap_bytes(index, position, first) > SEEK_MIN_BYTES)):
                packets, position = _seek(container, stream, index, first)
            for packet in packets:
                if packet.size == 0:
                    continue
                if position >= first:
                    cc.skip_frame = "DEFAULT" if position in wanted_positions else "NONREF"
                    take(cc.decode(packet))
                position += 1
                if position > last:
                    break
            take(cc.decode(None))  # drain: the frames still held for reordering
            cc.flush_buffers()
    except av.error.FFmpegError as e:
        raise SparseFailed(f"decoding failed: {e}") from e
    finally:
        cc.skip_frame = "DEFAULT"
    if len(got) != len(wanted):
        raise SparseFailed(f"{len(wanted) - len(got)} sampled frame(s) did not decode")
    return got


def _gap_bytes(index: PacketIndex, position: int, first: int) -> int:
    a, b = index.pos[min(position, len(index.pos) - 1)], index.pos[first]
    return int(b - a) if a >= 0 and b >= 0 else 0


def _rewind(container, stream, index: PacketIndex):
    """Packets from the very first one: ``(packet iterator, 0)``."""
    container.seek(int(index.pts.min()), stream=stream, backward=True)
    packets = container.demux(stream)
    first = next((p for p in packets if p.size), None)
    if first is None or first.pts != index.pts[0]:
        raise SparseFailed("could not go back to the first packet")
    return _chain(first, packets), 0


def _seek(container, stream, index: PacketIndex, first: int):
    """Seek to at or before packet ``first``: ``(packet iterator, decode position of the packet it yields next)``."""
    container.seek(int(index.pts[first]), stream=stream, backward=True)
    packets = container.demux(stream)
    packet = next((p for p in packets if p.size), None)
    if packet is None or packet.pts is None:
        raise SparseFailed("seeking found no packet with a timestamp")
    where = np.flatnonzero(index.pts == packet.pts)
    if len(where) != 1 or where[0] > first:  # landed past the start point: start over from the beginning
        return _rewind(container, stream, index)
    return _chain(packet, packets), int(where[0])


def _chain(first, rest):
    yield first
    yield from rest


def iter_decoded(container, stream, path):
    """Every frame of ``stream`` in the order a full decode outputs them (a generator). Packets
    that fail to decode are passed over, as FFmpeg's own tools do; :class:`VideoError` if this
    build cannot decode the codec at all."""
    import av

    cc = stream.codec_context
    cc.skip_frame = "DEFAULT"
    n = 0
    packets = Demuxer(container, stream)
    while True:
        packet = next(packets, None)
        try:
            frames = cc.decode(packet) if packet is None or packet.size else []
        except av.error.FFmpegError as e:
            if n == 0 and (getattr(e, "errno", None) in UNSUPPORTED_ERRNOS or isinstance(
                    e, (av.error.PatchWelcomeError, av.error.DecoderNotFoundError))):
                raise VideoError(path, unsupported(codec_name(stream))) from e
            frames = []
        for frame in frames:
            n += 1
            yield frame
        if packet is None:
            return


# --------------------------------------------------------------------------- frames to arrays

def to_array(frame, bgr: bool = False) -> np.ndarray:
    """The frame as an ``(h, w, 3)`` uint8 RGB (or BGR) array, display rotation applied.

    The YUV matrix and range are the frame's own where it says (BT.709, full range, ...), else
    FFmpeg's default (BT.601, limited range), the conversion OpenCV applies to every video; 10-bit
    and 4:4:4 sources are converted from their own samples.
    """
    import av

    kwargs = {"format": "bgr24" if bgr else "rgb24"}
    if frame.color_range == 2:  # full ("JPEG") range tagged on a yuv format that does not imply it
        kwargs["src_color_range"] = 2
    try:
        image = frame.to_ndarray(**kwargs)
    except av.error.FFmpegError:  # tags swscale does not take (reserved values...): its defaults
        image = frame.to_ndarray(format=kwargs["format"], src_colorspace="ITU601", dst_colorspace="ITU601")
    turns = rotation_turns(frame)
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


def rotation_turns(frame) -> int:
    """Quarter turns (counter-clockwise) that show the frame upright, from its display matrix."""
    return round(frame.rotation / 90) % 4
