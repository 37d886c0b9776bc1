"""Serval's ``jsonimage`` preview format: a JSON header line, then the raw pixel data.

What ADTimePix3 (``serval_stream.cpp``, read at commit da03cde, Serval 4.1.x) expects on a
preview ``ImageChannel`` with ``"Format": "jsonimage"``, and what this module reads and writes:

* one JSON object on one line, ending with ``\\n``: ``width``, ``height`` (pixels),
  ``pixelFormat`` (``"uint16"`` or ``"uint32"``; absent means ``uint16``), ``frameNumber``,
  ``timeAtFrame`` (s since the measurement started) and fields this reader ignores
  (``thresholdID``, ``integrationSize``, ...);
* then ``width * height`` pixels in network byte order (big-endian), row-major: row ``gy``
  of the image is ``gy * width`` pixels in, i.e. ``image[gy, gx]``.

The reader is bounded: a header longer than :data:`MAX_HEADER_BYTES`, an image larger than
:data:`MAX_PIXELS`, an unknown pixel format or a non-JSON header is a :class:`DecodeError`;
every read has a deadline (:class:`DeviceTimeout`); a closed stream is
:class:`ConnectionFailed`.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import ConnectionFailed, DecodeError, DeviceTimeout

DEVICE = "TimePix"
FORMAT = "jsonimage"
PIXEL_DTYPES: dict[str, np.dtype[Any]] = {"uint16": np.dtype(">u2"), "uint32": np.dtype(">u4")}
MAX_HEADER_BYTES = 65536  #: a header line longer than this is garbage, not a frame
MAX_PIXELS = 1 << 24  #: 16 Mpixel: far above any TimePix3 assembly (the 2 x 6 has 0.79 M)


def encode_parts(
    image: np.ndarray,
    frame_number: int,
    time_at_frame_s: float,
    *,
    pixel_format: str = "uint16",
    **extra: Any,
) -> tuple[bytes, np.ndarray]:
    """One ``jsonimage`` frame as (header line, big-endian pixels): sent one after the
    other, so that no second copy of the pixels is made. Counts are clipped to the type."""
    dtype = PIXEL_DTYPES[pixel_format]
    height, width = image.shape
    header = {
        "width": int(width),
        "height": int(height),
        "pixelFormat": pixel_format,
        "frameNumber": int(frame_number),
        "timeAtFrame": float(time_at_frame_s),
        **extra,
    }
    pixels = np.clip(image, 0, np.iinfo(dtype).max).astype(dtype)
    return json.dumps(header).encode() + b"\n", pixels


def encode(
    image: np.ndarray,
    frame_number: int,
    time_at_frame_s: float,
    *,
    pixel_format: str = "uint16",
    **extra: Any,
) -> bytes:
    """One ``jsonimage`` frame: header line + big-endian pixels (counts clipped to the type)."""
    head, pixels = encode_parts(
        image, frame_number, time_at_frame_s, pixel_format=pixel_format, **extra
    )
    return head + pixels.tobytes()


@contextlib.contextmanager
def _socket_errors(source: str, timeout_text: str) -> Iterator[None]:
    """Socket errors as the hardware layer's: a timeout, or a failed connection."""
    try:
        yield
    except TimeoutError:
        raise DeviceTimeout(f"{source}: {timeout_text}", device=DEVICE, key="preview") from None
    except OSError as exc:
        raise ConnectionFailed(f"{source}: {exc}", device=DEVICE, key="preview") from None


class JsonImageReader:
    """Frames from one TCP connection to a Serval preview channel (``tcp://listen@HOST:PORT``)."""

    def __init__(self, sock: socket.socket, source: str) -> None:
        self._sock = sock
        self._buf = bytearray()
        self.source = source

    @classmethod
    def connect(cls, host: str, port: int, timeout_s: float) -> JsonImageReader:
        source = f"TimePix preview tcp://{host}:{port}"
        with _socket_errors(source, f"no connection within {timeout_s:g} s"):
            sock = socket.create_connection((host, port), timeout=timeout_s)
        return cls(sock, source)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> JsonImageReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeviceTimeout(f"{self.source}: no frame in time", device=DEVICE, key="preview")
        self._sock.settimeout(remaining)
        with _socket_errors(self.source, "no frame in time"):
            chunk = self._sock.recv(1 << 16)
        if not chunk:
            raise ConnectionFailed(
                f"{self.source}: stream closed by Serval", device=DEVICE, key="preview"
            )
        self._buf += chunk

    def _garbage(self, why: str) -> DecodeError:
        return DecodeError(f"{self.source}: not a jsonimage stream: {why}", device=DEVICE)

    def read_frame(self, deadline: float) -> tuple[dict[str, Any], np.ndarray]:
        """The next ``(header, image[gy, gx])``; ``deadline`` is a ``time.monotonic()`` value."""
        while (end := self._buf.find(b"\n")) < 0:
            if len(self._buf) > MAX_HEADER_BYTES:
                raise self._garbage(f"no header line within {MAX_HEADER_BYTES} bytes")
            self._fill(deadline)
        if end > MAX_HEADER_BYTES:
            raise self._garbage(f"header line longer than {MAX_HEADER_BYTES} bytes")
        try:
            header = json.loads(bytes(self._buf[:end]))
            width, height = int(header["width"]), int(header["height"])
            fmt = str(header.get("pixelFormat", "uint16")).lower()
            int(header.get("frameNumber", 0))
        except (ValueError, TypeError, KeyError, UnicodeDecodeError) as exc:
            raise self._garbage(f"bad header ({exc!r})") from None
        if fmt not in PIXEL_DTYPES:
            raise self._garbage(f"pixelFormat {fmt!r} (expected uint16 or uint32)")
        if width <= 0 or height <= 0 or width * height > MAX_PIXELS:
            raise self._garbage(f"image of {width} x {height} pixels")
        dtype = PIXEL_DTYPES[fmt]
        image = np.empty(width * height, dtype=dtype)  # the pixels go straight in here
        raw = image.data.cast("B")
        have = min(len(self._buf) - end - 1, raw.nbytes)
        raw[:have] = self._buf[end + 1 : end + 1 + have]
        del self._buf[: end + 1 + have]
        while have < raw.nbytes:
            have += self._recv_into(raw[have:], deadline)
        return header, image.reshape(height, width)

    def _recv_into(self, view: memoryview, deadline: float) -> int:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeviceTimeout(f"{self.source}: no frame in time", device=DEVICE, key="preview")
        self._sock.settimeout(remaining)
        with _socket_errors(self.source, "no frame in time"):
            n = self._sock.recv_into(view)
        if not n:
            raise ConnectionFailed(
                f"{self.source}: stream closed by Serval", device=DEVICE, key="preview"
            )
        return n
