"""TimePix geometry, beam-spot estimator, the jsonimage stream and the Serval client against
the simulated server (real HTTP and TCP on 127.0.0.1, ephemeral ports, bounded timeouts)."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from fixtures import hw as hw_fixtures
from fixtures.net import free_port
from hypothesis import given, settings
from hypothesis import strategies as st

from hw_interfaces.errors import (
    BadRequest,
    ConnectionFailed,
    DecodeError,
    DeviceTimeout,
    NoBeam,
    NoData,
    ProtocolError,
)
from hw_interfaces.sim import Fault
from hw_interfaces.timepix import (
    RECORDING,
    BeamSpot,
    BeamSpotSource,
    Frame,
    ServalBeamMonitor,
    ServalClient,
    TimepixGeometry,
    estimate_beam_spot,
    jsonimage,
)

pytestmark = pytest.mark.timeout(60)
serval_sim = hw_fixtures.serval_sim  # fixture
G = TimepixGeometry()


def test_geometry_matches_the_published_outline():
    assert G.width_mm == pytest.approx(85.4, abs=0.01)
    assert G.height_mm == pytest.approx(28.5, abs=0.01)
    assert G.n_chips == 12 and G.shape == (512, 1536)
    # corner pixels are symmetric about the centre
    x0, y0 = G.pixel_to_mm(np.array([0]), np.array([0]), np.array([0]))
    x1, y1 = G.pixel_to_mm(np.array([11]), np.array([255]), np.array([255]))
    assert x0[0] == pytest.approx(-x1[0]) and y0[0] == pytest.approx(-y1[0])
    assert x0[0] == pytest.approx(-85.4 / 2 + 0.0275)


def test_orientation_and_offset_are_parameters():
    flipped = TimepixGeometry(flip_x=True, offset_y_mm=1.0)
    x, y = G.pixel_to_mm(np.array([0]), np.array([10]), np.array([10]))
    xf, yf = flipped.pixel_to_mm(np.array([0]), np.array([10]), np.array([10]))
    assert xf[0] == pytest.approx(-x[0]) and yf[0] == pytest.approx(y[0] + 1.0)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 11), st.integers(0, 255), st.integers(0, 255), st.booleans(), st.booleans())
def test_mm_to_pixel_inverts_pixel_to_mm(chip, px, py, fx, fy):
    g = TimepixGeometry(flip_x=fx, flip_y=fy, offset_x_mm=0.3)
    x, y = g.pixel_to_mm(np.array([chip]), np.array([px]), np.array([py]))
    c2, px2, py2, inside = g.mm_to_pixel(x, y)
    assert inside[0] and (c2[0], px2[0], py2[0]) == (chip, px, py)


def test_gaps_and_outside_are_flagged():
    _, _, _, inside = G.mm_to_pixel(np.array([0.0, 50.0, 0.0]), np.array([0.0, 0.0, 20.0]))
    assert not inside.any()  # y = 0 lies in the 0.34 mm gap between the two rows


def synthetic_frames(
    n_frames: int,
    x0: float,
    y0: float,
    sx: float,
    sy: float,
    hits: int,
    seed: int = 0,
    hot: list[tuple[int, int, int]] = (),
    hot_count: int = 40,
    noise: int = 5,
) -> list[Frame]:
    """Frames drawn here, independently of the simulator."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n_frames):
        chip, px, py, ok = G.mm_to_pixel(rng.normal(x0, sx, hits), rng.normal(y0, sy, hits))
        hp = np.asarray(hot, dtype=np.int64).reshape(-1, 3)
        frames.append(
            Frame(
                i,
                "",
                np.concatenate([chip[ok], rng.integers(0, 12, noise), hp[:, 0]]),
                np.concatenate([px[ok], rng.integers(0, 256, noise), hp[:, 1]]),
                np.concatenate([py[ok], rng.integers(0, 256, noise), hp[:, 2]]),
                np.concatenate(
                    [np.ones(ok.sum() + noise, dtype=np.int64), np.full(len(hp), hot_count)]
                ),
            )
        )
    return frames


def test_estimator_recovers_a_known_gaussian_despite_hot_pixels_and_noise():
    hot = [(0, 5, 5), (3, 100, 200), (7, 128, 128), (8, 1, 250)]
    frames = synthetic_frames(20, 10.0, 5.0, 2.5, 1.8, 500, hot=hot)
    est = estimate_beam_spot(frames, G)
    assert est.x_mm == pytest.approx(10.0, abs=0.05)
    assert est.y_mm == pytest.approx(5.0, abs=0.05)
    assert est.sigma_x_mm == pytest.approx(2.5, rel=0.03)
    assert est.sigma_y_mm == pytest.approx(1.8, rel=0.03)
    assert len(est.hot_pixels) == len(hot)
    # the naive mean is pulled by the hot pixels: the masking matters
    naive = np.average(
        np.concatenate([G.pixel_to_mm(f.chip, f.x, f.y)[0] for f in frames]),
        weights=np.concatenate([f.count for f in frames]),
    )
    assert abs(naive - 10.0) > 1.0


def test_hot_pixel_inside_the_beam_is_masked():
    c, px, py, _ = G.mm_to_pixel(np.array([10.5]), np.array([5.2]))
    frames = synthetic_frames(
        10, 10.0, 5.0, 2.0, 2.0, 400, hot=[(c[0], px[0], py[0])], hot_count=500
    )
    est = estimate_beam_spot(frames, G)
    assert len(est.hot_pixels) == 1
    assert est.x_mm == pytest.approx(10.0, abs=0.08)


def test_static_mask():
    frames = synthetic_frames(3, -20.0, 3.0, 2.0, 2.0, 400, hot=[(0, 10, 10)], hot_count=2)
    gx, gy = G.global_pixel(np.array([0]), np.array([10]), np.array([10]))
    est = estimate_beam_spot(frames, G, masked_pixels=[(int(gx[0]), int(gy[0]))])
    assert (int(gx[0]), int(gy[0])) in est.hot_pixels


def test_empty_frames_mean_no_beam_and_no_frames_mean_no_data():
    empty = synthetic_frames(10, 0.0, 0.0, 1.0, 1.0, 0, noise=1, hot=[(2, 3, 4)])
    with pytest.raises(NoBeam, match="hits"):
        estimate_beam_spot(empty, G)
    with pytest.raises(NoData, match="no frames"):
        estimate_beam_spot([], G)


def test_monitor_is_a_beam_spot_source(serval_sim):
    monitor = ServalBeamMonitor(ServalClient(serval_sim.url))
    assert isinstance(monitor, BeamSpotSource)


def test_dashboard_and_detector_endpoints(serval_sim):
    client = ServalClient(serval_sim.url, timeout_s=1.0)
    meas = client.dashboard()["Measurement"]
    assert set(meas) >= {"Status", "FrameCount", "DroppedFrames", "PixelEventRate", "ElapsedTime"}
    assert meas["Status"] == RECORDING
    assert client.detector_info()["NumberOfChips"] == 12
    assert len(client.detector_layout()["Chips"]) == 12
    client.stop_measurement()
    assert client.measurement_status() != RECORDING
    client.start_measurement()
    assert client.measurement_status() == RECORDING


def test_beam_spot_from_the_simulated_server(serval_sim):
    monitor = ServalBeamMonitor(ServalClient(serval_sim.url), n_frames=10, timeout_s=5.0)
    spot = monitor.read_beam_spot()
    assert isinstance(spot, BeamSpot)
    assert spot.x_mm == pytest.approx(1.5, abs=0.1)
    assert spot.y_mm == pytest.approx(-0.8, abs=0.1)
    assert spot.sigma_x_mm == pytest.approx(2.0, rel=0.08)
    assert spot.sigma_y_mm == pytest.approx(1.2, rel=0.1)
    assert spot.frames_used == 10 and spot.frames_dropped == 0
    assert spot.hot_pixels_masked == len(serval_sim.hot_pixels)
    assert spot.time_utc <= datetime.now(timezone.utc)
    assert spot.as_dict()["source"].startswith("serval:")


def test_collected_frames_are_new_contiguous_and_never_duplicated(serval_sim):
    monitor = ServalBeamMonitor(ServalClient(serval_sim.url))
    first, dropped1 = monitor.collect(8, 5.0)
    second, dropped2 = monitor.collect(8, 5.0)
    i1, i2 = [f.index for f in first], [f.index for f in second]
    assert i1 == list(range(i1[0], i1[0] + 8)) and i2 == list(range(i2[0], i2[0] + 8))
    assert i2[0] > i1[-1] and dropped1 == dropped2 == 0


def test_dropped_frames_are_counted(serval_sim):
    serval_sim.inject(Fault.DROP_FRAMES)
    spot = ServalBeamMonitor(ServalClient(serval_sim.url)).read_beam_spot(10, 5.0)
    assert spot.frames_dropped > 0 and spot.frames_used == 10
    assert spot.x_mm == pytest.approx(1.5, abs=0.15)
    assert ServalClient(serval_sim.url).dashboard()["Measurement"]["DroppedFrames"] > 0


def test_no_beam(serval_sim):
    serval_sim.inject("no_beam")
    with pytest.raises(NoBeam, match="TimePix"):
        ServalBeamMonitor(ServalClient(serval_sim.url)).read_beam_spot(5, 3.0)


def test_measurement_not_running_is_no_data(serval_sim):
    serval_sim.stop_measurement()
    with pytest.raises(NoData, match="DA_IDLE"):
        ServalBeamMonitor(ServalClient(serval_sim.url)).read_beam_spot(5, 1.0)


def test_slow_server_times_out(serval_sim):
    serval_sim.inject(Fault.SLOW)
    client = ServalClient(serval_sim.url, timeout_s=0.2, retries=1)
    t0 = time.monotonic()
    with pytest.raises(DeviceTimeout, match="/dashboard"):
        client.dashboard()
    assert time.monotonic() - t0 < 1.5
    serval_sim.clear()


def test_dead_server_is_connection_failed(serval_sim):
    url = serval_sim.url
    serval_sim.inject(Fault.DEAD)
    with pytest.raises(ConnectionFailed, match=url):
        ServalClient(url, timeout_s=0.5).dashboard()
    with pytest.raises(ConnectionFailed):
        ServalClient(f"http://127.0.0.1:{free_port()}", timeout_s=0.5, retries=0).dashboard()


def test_unknown_endpoint_and_bad_url(serval_sim):
    client = ServalClient(serval_sim.url)
    with pytest.raises(ProtocolError, match="404"):
        client._request("/nope")
    with pytest.raises(ValueError, match="URL"):
        ServalClient("127.0.0.1:8080")


# -- Serval's API (version 4.1.x as ADTimePix3 drives it) ---------------------------------


def test_detector_health_measurement_and_configs(serval_sim):
    client = ServalClient(serval_sim.url, timeout_s=1.0)
    det = client.detector()
    assert set(det) >= {"Info", "Health", "Config", "Layout"}
    info = det["Info"]
    # ADTimePix3 derives the image width as PixCount / NumberOfRows
    assert info["PixCount"] // info["NumberOfRows"] == 1536 and info["NumberOfRows"] == 512
    assert isinstance(det["Health"], list)  # Serval 4: one health entry per board
    health = client.detector_health()
    assert {"LocalTemperature", "FPGATemperature", "BiasVoltage", "ChipTemperatures"} <= set(health)
    meas = client.measurement()
    assert meas["Info"]["Status"] == RECORDING
    client.set_measurement_config({"Corrections": {"x": 1}})
    assert client.measurement_config() == {"Corrections": {"x": 1}}
    client.set_detector_config({"BiasVoltage": 90})
    assert client.detector_config()["BiasVoltage"] == 90
    assert client.detector_health()["BiasVoltage"] == 90


def test_idle_dashboard_has_no_measurement(serval_sim):
    client = ServalClient(serval_sim.url, timeout_s=1.0)
    client.stop_measurement()
    assert client.dashboard()["Measurement"] is None
    assert client.measurement_status() == "DA_IDLE"


def test_no_invented_frames_endpoint(serval_sim):
    with pytest.raises(ProtocolError, match="404"):
        ServalClient(serval_sim.url)._request("/measurement/frames", {"since": 0})


def test_default_destination_is_a_jsonimage_listen_channel(serval_sim):
    client = ServalClient(serval_sim.url, timeout_s=1.0)
    channels = client.destination()["Preview"]["ImageChannels"]
    assert channels[0]["Format"] == "jsonimage"
    assert channels[0]["Base"] == f"tcp://listen@127.0.0.1:{serval_sim.preview_port}"
    assert client.preview_stream_address() == ("127.0.0.1", serval_sim.preview_port)


def test_jsonimage_frames_on_the_wire_follow_the_documented_format(serval_sim):
    """Read the stream by hand (JSON line, then big-endian uint16 pixels, row-major)."""
    with socket.create_connection(("127.0.0.1", serval_sim.preview_port), timeout=5.0) as s:
        buf = b""
        while b"\n" not in buf:
            buf += s.recv(65536)
        line, _, rest = buf.partition(b"\n")
        header = json.loads(line)
        assert (header["width"], header["height"], header["pixelFormat"]) == (1536, 512, "uint16")
        need = header["width"] * header["height"] * 2
        while len(rest) < need:
            rest += s.recv(1 << 20)
    pixels = struct.unpack(f">{header['width'] * header['height']}H", rest[:need])
    total = sum(pixels)
    hot = sum(serval_sim.hot_pixel_count for _ in serval_sim.hot_pixels)
    assert total > hot + 100  # beam hits besides the hot pixels
    for chip, px, py in serval_sim.hot_pixels:
        gx, gy = (chip % 6) * 256 + px, (chip // 6) * 256 + py
        assert pixels[gy * 1536 + gx] >= serval_sim.hot_pixel_count


def test_jsonimage_reader_decodes_hand_made_bytes():
    image = np.zeros((3, 4), dtype=np.int64)
    image[1, 2], image[2, 0] = 7, 70000
    head = json.dumps({"width": 4, "height": 3, "pixelFormat": "uint32", "frameNumber": 9})
    raw = head.encode() + b"\n" + struct.pack(">12I", *image.ravel().tolist())
    a, b = socket.socketpair()
    with a, b:
        a.sendall(raw + raw[:10])
        reader = jsonimage.JsonImageReader(b, "test")
        header, got = reader.read_frame(time.monotonic() + 2.0)
        assert header["frameNumber"] == 9 and got.tolist() == image.tolist()
        with pytest.raises(DeviceTimeout):  # a half frame never completes
            reader.read_frame(time.monotonic() + 0.2)
        a.close()
        with pytest.raises(ConnectionFailed, match="closed"):
            reader.read_frame(time.monotonic() + 2.0)


@pytest.mark.parametrize(
    "payload, match",
    [
        (b"HTTP/1.1 200 OK\r\n\r\n<html>", "bad header"),
        (b'{"width": 4, "height": 3, "pixelFormat": "float64"}\n', "pixelFormat"),
        (b'{"width": 100000, "height": 100000}\n', "pixels"),
        (b"x" * (jsonimage.MAX_HEADER_BYTES + 10), "header line"),
    ],
)
def test_jsonimage_reader_refuses_garbage(payload, match):
    a, b = socket.socketpair()
    with a, b:
        a.sendall(payload)
        with pytest.raises(DecodeError, match=match):
            jsonimage.JsonImageReader(b, "test").read_frame(time.monotonic() + 2.0)


def test_configure_preview_moves_the_stream_and_restarts_the_measurement(serval_sim):
    client = ServalClient(serval_sim.url, timeout_s=1.0)
    port = free_port()
    monitor = ServalBeamMonitor(client, n_frames=5, timeout_s=5.0)
    monitor.configure_preview(port)
    assert client.preview_stream_address() == ("127.0.0.1", port)
    assert serval_sim.preview_port == port
    assert monitor.read_beam_spot().x_mm == pytest.approx(1.5, abs=0.15)


def test_destination_without_a_preview_channel_is_no_data(serval_sim):
    client = ServalClient(serval_sim.url, timeout_s=1.0)
    client.set_destination({"Raw": [{"Base": "file:/tmp/raw"}]})
    with pytest.raises(NoData, match="Preview ImageChannel"):
        ServalBeamMonitor(client).read_beam_spot(3, 1.0)
    with pytest.raises(ProtocolError, match="400"):
        client.set_destination({"Preview": {"ImageChannels": [{"Base": "x", "Format": "bmp"}]}})


def test_dead_server_during_a_measurement_is_connection_failed(serval_sim):
    monitor = ServalBeamMonitor(ServalClient(serval_sim.url, timeout_s=0.5), n_frames=200)
    threading.Timer(0.3, serval_sim.kill).start()
    t0 = time.monotonic()
    with pytest.raises(ConnectionFailed, match=r"closed|preview"):
        monitor.read_beam_spot(200, 10.0)
    assert time.monotonic() - t0 < 3.0


def test_bounds_on_frames_and_timeouts(serval_sim):
    client = ServalClient(serval_sim.url)
    for bad in (float("nan"), float("inf"), 0.0, -1.0, 1e300):
        with pytest.raises(BadRequest, match="timeout"):
            ServalClient(serval_sim.url, timeout_s=bad)
        with pytest.raises(BadRequest, match="timeout"):
            ServalBeamMonitor(client).collect(5, bad)
    for bad_n in (0, -3, 10**9):
        with pytest.raises(BadRequest, match="frames"):
            ServalBeamMonitor(client).collect(bad_n, 1.0)


class _GarbageHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"\x00\xffnot json at all"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def test_http_server_answering_garbage_is_a_decode_error():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _GarbageHandler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(DecodeError, match="non-JSON"):
            ServalBeamMonitor(ServalClient(url, timeout_s=1.0)).read_beam_spot(3, 1.0)
    finally:
        server.shutdown()
        server.server_close()
