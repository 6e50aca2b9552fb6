"""KITTI calibration files: the real object-set and raw layouts, round trips and errors."""

from __future__ import annotations

import numpy as np
import pytest

from monotakd_ros.data.kitti.calib import (
    KittiObjectCalib,
    RawCalib,
    object_calib_from_camera_calib,
    raw_calib_from_camera_calib,
    read_object_calib,
    read_raw_calib,
    write_object_calib,
    write_raw_calib,
)
from monotakd_ros.errors import CalibrationError
from monotakd_ros.geometry.calib import CameraCalib

# The real object-set file training/calib/000000.txt (2011_09_26 drives), byte for byte.
P2_TEXT = (
    "7.215377000000e+02 0.000000000000e+00 6.095593000000e+02 4.485728000000e+01 "
    "0.000000000000e+00 7.215377000000e+02 1.728540000000e+02 2.163791000000e-01 "
    "0.000000000000e+00 0.000000000000e+00 1.000000000000e+00 2.745884000000e-03"
)
R0_TEXT = (
    "9.999239000000e-01 9.837760000000e-03 -7.445048000000e-03 -9.869795000000e-03 "
    "9.999421000000e-01 -4.278459000000e-03 7.402527000000e-03 4.351614000000e-03 "
    "9.999631000000e-01"
)
VELO_TEXT = (
    "7.533745000000e-03 -9.999714000000e-01 -6.166020000000e-04 -4.069766000000e-03 "
    "1.480249000000e-02 7.280733000000e-04 -9.998902000000e-01 -7.631618000000e-02 "
    "9.998621000000e-01 7.523790000000e-03 1.480755000000e-02 -2.717806000000e-01"
)
IMU_TEXT = (
    "9.999976000000e-01 7.553071000000e-04 -2.035826000000e-03 -8.086759000000e-01 "
    "-7.854027000000e-04 9.998898000000e-01 -1.482298000000e-02 3.195559000000e-01 "
    "2.024406000000e-03 1.482454000000e-02 9.998881000000e-01 -7.997231000000e-01"
)
REAL_OBJECT_CALIB = (
    "P0: 7.215377000000e+02 0.000000000000e+00 6.095593000000e+02 0.000000000000e+00 "
    "0.000000000000e+00 7.215377000000e+02 1.728540000000e+02 0.000000000000e+00 "
    "0.000000000000e+00 0.000000000000e+00 1.000000000000e+00 0.000000000000e+00\n"
    "P1: 7.215377000000e+02 0.000000000000e+00 6.095593000000e+02 -3.875744000000e+02 "
    "0.000000000000e+00 7.215377000000e+02 1.728540000000e+02 0.000000000000e+00 "
    "0.000000000000e+00 0.000000000000e+00 1.000000000000e+00 0.000000000000e+00\n"
    f"P2: {P2_TEXT}\n"
    "P3: 7.215377000000e+02 0.000000000000e+00 6.095593000000e+02 -3.395242000000e+02 "
    "0.000000000000e+00 7.215377000000e+02 1.728540000000e+02 2.199936000000e+00 "
    "0.000000000000e+00 0.000000000000e+00 1.000000000000e+00 2.729905000000e-03\n"
    f"R0_rect: {R0_TEXT}\n"
    f"Tr_velo_to_cam: {VELO_TEXT}\n"
    f"Tr_imu_to_velo: {IMU_TEXT}\n"
)

# The real raw date folder 2011_09_26 (cameras 00 and 02 in full; 01 and 03 as published too).
REAL_CAM_TO_CAM = """calib_time: 09-Jan-2012 13:57:47
corner_dist: 9.950000e-02
S_00: 1.392000e+03 5.120000e+02
K_00: 9.842439e+02 0.000000e+00 6.900000e+02 0.000000e+00 9.808141e+02 2.331966e+02 0.000000e+00 0.000000e+00 1.000000e+00
D_00: -3.728755e-01 2.037299e-01 2.219027e-03 1.383707e-03 -7.233722e-02
R_00: 1.000000e+00 0.000000e+00 0.000000e+00 0.000000e+00 1.000000e+00 0.000000e+00 0.000000e+00 0.000000e+00 1.000000e+00
T_00: 2.573699e-16 -1.059758e-16 1.614870e-16
S_rect_00: 1.242000e+03 3.750000e+02
R_rect_00: 9.999239e-01 9.837760e-03 -7.445048e-03 -9.869795e-03 9.999421e-01 -4.278459e-03 7.402527e-03 4.351614e-03 9.999631e-01
P_rect_00: 7.215377e+02 0.000000e+00 6.095593e+02 0.000000e+00 0.000000e+00 7.215377e+02 1.728540e+02 0.000000e+00 0.000000e+00 0.000000e+00 1.000000e+00 0.000000e+00
S_01: 1.392000e+03 5.120000e+02
K_01: 9.895267e+02 0.000000e+00 7.020000e+02 0.000000e+00 9.878386e+02 2.455590e+02 0.000000e+00 0.000000e+00 1.000000e+00
D_01: -3.644661e-01 1.790019e-01 1.148107e-03 -6.298563e-04 -5.314062e-02
R_01: 9.993513e-01 1.860866e-02 -3.083487e-02 -1.887662e-02 9.997863e-01 -8.421873e-03 3.067156e-02 8.998467e-03 9.994890e-01
T_01: -5.370000e-01 4.822061e-03 -1.252488e-02
S_rect_01: 1.242000e+03 3.750000e+02
R_rect_01: 9.996878e-01 -8.976826e-03 2.331651e-02 8.876121e-03 9.999508e-01 4.418952e-03 -2.335503e-02 -4.210612e-03 9.997184e-01
P_rect_01: 7.215377e+02 0.000000e+00 6.095593e+02 -3.875744e+02 0.000000e+00 7.215377e+02 1.728540e+02 0.000000e+00 0.000000e+00 0.000000e+00 1.000000e+00 0.000000e+00
S_02: 1.392000e+03 5.120000e+02
K_02: 9.597910e+02 0.000000e+00 6.960217e+02 0.000000e+00 9.569251e+02 2.241806e+02 0.000000e+00 0.000000e+00 1.000000e+00
D_02: -3.691481e-01 1.968681e-01 1.353473e-03 5.677587e-04 -6.770705e-02
R_02: 9.999758e-01 -5.267463e-03 -4.552439e-03 5.251945e-03 9.999804e-01 -3.413835e-03 4.570332e-03 3.389843e-03 9.999838e-01
T_02: 5.956621e-02 2.900141e-04 2.577209e-03
S_rect_02: 1.242000e+03 3.750000e+02
R_rect_02: 9.998817e-01 1.511453e-02 -2.841595e-03 -1.511724e-02 9.998853e-01 -9.338510e-04 2.827154e-03 9.766976e-04 9.999955e-01
P_rect_02: 7.215377e+02 0.000000e+00 6.095593e+02 4.485728e+01 0.000000e+00 7.215377e+02 1.728540e+02 2.163791e-01 0.000000e+00 0.000000e+00 1.000000e+00 2.745884e-03
S_03: 1.392000e+03 5.120000e+02
K_03: 9.037596e+02 0.000000e+00 6.957519e+02 0.000000e+00 9.019653e+02 2.242509e+02 0.000000e+00 0.000000e+00 1.000000e+00
D_03: -3.639558e-01 1.788651e-01 6.029694e-04 -3.922424e-04 -5.382460e-02
R_03: 9.995599e-01 1.699522e-02 -2.431313e-02 -1.704422e-02 9.998531e-01 -1.809756e-03 2.427880e-02 2.223358e-03 9.997028e-01
T_03: -4.731050e-01 5.551470e-03 -5.250882e-03
S_rect_03: 1.242000e+03 3.750000e+02
R_rect_03: 9.998321e-01 -7.193136e-03 1.685599e-02 7.232804e-03 9.999712e-01 -2.293585e-03 -1.683901e-02 2.415116e-03 9.998553e-01
P_rect_03: 7.215377e+02 0.000000e+00 6.095593e+02 -3.395242e+02 0.000000e+00 7.215377e+02 1.728540e+02 2.199936e+00 0.000000e+00 0.000000e+00 1.000000e+00 2.729905e-03
"""  # noqa: E501
REAL_VELO_TO_CAM = """calib_time: 15-Mar-2012 11:37:16
R: 7.533745e-03 -9.999714e-01 -6.166020e-04 1.480249e-02 7.280733e-04 -9.998902e-01 9.998621e-01 7.523790e-03 1.480755e-02
T: -4.069766e-03 -7.631618e-02 -2.717806e-01
delta_f: 0.000000e+00 0.000000e+00
delta_c: 0.000000e+00 0.000000e+00
"""  # noqa: E501
REAL_IMU_TO_VELO = """calib_time: 25-May-2012 16:47:16
R: 9.999976e-01 7.553071e-04 -2.035826e-03 -7.854027e-04 9.998898e-01 -1.482298e-02 2.024406e-03 1.482454e-02 9.998881e-01
T: -8.086759e-01 3.195559e-01 -7.997231e-01
"""  # noqa: E501


def matrix(text: str, rows: int) -> np.ndarray:
    """Matrix parsed independently of the module under test."""
    return np.array([float(t) for t in text.split()]).reshape(rows, -1)


@pytest.fixture
def object_calib_path(tmp_path):
    path = tmp_path / "000000.txt"
    path.write_text(REAL_OBJECT_CALIB)
    return path


@pytest.fixture
def date_dir(tmp_path):
    folder = tmp_path / "2011_09_26"
    folder.mkdir()
    (folder / "calib_cam_to_cam.txt").write_text(REAL_CAM_TO_CAM)
    (folder / "calib_velo_to_cam.txt").write_text(REAL_VELO_TO_CAM)
    (folder / "calib_imu_to_velo.txt").write_text(REAL_IMU_TO_VELO)
    return folder


def random_camera_calib(seed: int) -> CameraCalib:
    """Arbitrary float64 values that %.12e cannot hold exactly."""
    rng = np.random.default_rng(seed)
    P2 = np.array([[700.0, 0.0, 600.0, 45.0], [0.0, 700.0, 170.0, 0.2], [0.0, 0.0, 1.0, 0.003]])
    return CameraCalib(
        P2=P2 + rng.normal(0.0, 1.0, (3, 4)) * [[1, 0, 1, 1], [0, 1, 1, 1], [0, 0, 0, 1e-3]],
        R0_rect=np.eye(3) + rng.normal(0.0, 1e-3, (3, 3)),
        T_cam_from_lidar=rng.normal(0.0, 1.0, (3, 4)),
    )


def test_real_object_calib_parses_to_the_published_numbers(object_calib_path):
    calib = read_object_calib(object_calib_path)
    assert calib.P2[0, 0] == 721.5377
    assert calib.P2[0, 2] == 609.5593
    assert calib.P2[1, 2] == 172.854
    assert calib.P2[0, 3] == 44.85728
    assert calib.P2[2, 3] == 2.745884e-03
    assert calib.P1[0, 3] == -387.5744
    assert calib.P3[1, 3] == 2.199936
    assert calib.R0_rect[1, 2] == -4.278459e-03
    assert calib.Tr_velo_to_cam[0, 1] == -0.9999714
    assert calib.Tr_velo_to_cam[2, 3] == -0.2717806
    assert calib.Tr_imu_to_velo[0, 3] == -0.8086759
    np.testing.assert_array_equal(calib.P2, matrix(P2_TEXT, 3))
    np.testing.assert_array_equal(calib.R0_rect, matrix(R0_TEXT, 3))


def test_write_reproduces_the_real_file_byte_for_byte(object_calib_path, tmp_path):
    out = tmp_path / "out.txt"
    write_object_calib(out, read_object_calib(object_calib_path))
    assert out.read_text() == REAL_OBJECT_CALIB


def test_object_calib_round_trip_is_exact_for_arbitrary_floats(tmp_path):
    calib = object_calib_from_camera_calib(random_camera_calib(0))
    first, second = tmp_path / "a.txt", tmp_path / "b.txt"
    write_object_calib(first, calib)
    back = read_object_calib(first)
    assert back == calib
    np.testing.assert_array_equal(back.P2, calib.P2)
    write_object_calib(second, back)
    assert first.read_bytes() == second.read_bytes()
    # %.12e keeps 13 digits; these values need up to 17 and must get them.
    assert any(len(token) > len("7.215377000000e+02") for token in first.read_text().split())


def test_tracking_style_aliases_read_the_same_matrices(object_calib_path, tmp_path):
    tracking = (
        REAL_OBJECT_CALIB.replace("R0_rect:", "R_rect  ")
        .replace("Tr_velo_to_cam:", "Tr_velo_cam")
        .replace("Tr_imu_to_velo:", "Tr_imu_velo")
    )
    path = tmp_path / "0000.txt"
    path.write_text(tracking)
    assert read_object_calib(path) == read_object_calib(object_calib_path)


def test_camera_calib_projects_a_point_ahead_near_the_principal_column(object_calib_path):
    camera = read_object_calib(object_calib_path).camera_calib()
    point_lidar = np.array([[10.0, 0.0, 0.0]])
    uv, depth_m = camera.rect_to_image(camera.lidar_to_rect(point_lidar))
    # Independent chain P2 · R0_rect · Tr_velo_to_cam · X from the literal text.
    R0 = np.eye(4)
    R0[:3, :3] = matrix(R0_TEXT, 3)
    Tr = np.vstack([matrix(VELO_TEXT, 3), [0, 0, 0, 1]])
    uvw = matrix(P2_TEXT, 3) @ R0 @ Tr @ np.array([10.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(uv[0], uvw[:2] / uvw[2], rtol=1e-12)
    assert abs(uv[0, 0] - 609.5593) < 15.0  # the LiDAR sits 0.27 m behind and 0.06 m beside
    assert 150.0 < uv[0, 1] < 200.0
    assert depth_m[0] == pytest.approx(uvw[2])
    assert 9.5 < depth_m[0] < 10.0


def test_object_calib_from_camera_calib_keeps_the_detector_matrices(object_calib_path):
    real = read_object_calib(object_calib_path)
    derived = object_calib_from_camera_calib(real.camera_calib())
    np.testing.assert_array_equal(derived.P2, real.P2)
    np.testing.assert_array_equal(derived.R0_rect, real.R0_rect)
    np.testing.assert_array_equal(derived.Tr_velo_to_cam, real.Tr_velo_to_cam)
    np.testing.assert_array_equal(derived.P0, real.P0)  # real P0 is P2's intrinsics, no offset
    # Right cameras: a stereo baseline like KITTI's (real Tx of P1 is -387.57 px).
    assert derived.P1[0, 3] == pytest.approx(real.P1[0, 3], rel=0.01)
    assert derived.P3[0, 3] - derived.P2[0, 3] == pytest.approx(real.P1[0, 3], rel=0.01)


def test_object_calib_rejects_wrong_shapes_and_nan():
    good = dict(
        P0=np.zeros((3, 4)),
        P1=np.zeros((3, 4)),
        P2=np.zeros((3, 4)),
        P3=np.zeros((3, 4)),
        R0_rect=np.eye(3),
        Tr_velo_to_cam=np.zeros((3, 4)),
        Tr_imu_to_velo=np.zeros((3, 4)),
    )
    with pytest.raises(CalibrationError, match=r"KittiObjectCalib\.R0_rect must have shape"):
        KittiObjectCalib(**{**good, "R0_rect": np.eye(4)})
    with pytest.raises(CalibrationError, match=r"KittiObjectCalib\.P2 holds non-finite"):
        KittiObjectCalib(**{**good, "P2": np.full((3, 4), np.nan)})


def test_zero_focal_length_names_file_and_matrix(object_calib_path):
    """An all-zero P2 parsed before and put every projected point at infinity."""
    zeros = " ".join(["0.000000000000e+00"] * 12)
    object_calib_path.write_text(REAL_OBJECT_CALIB.replace(P2_TEXT, zeros))
    with pytest.raises(CalibrationError, match=r"000000\.txt: KittiObjectCalib\.P2: focal "
                                               r"lengths fx, fy must be > 0, got 0\.0 and 0\.0"):
        read_object_calib(object_calib_path)


@pytest.mark.parametrize(
    ("edit", "pattern"),
    [
        (
            lambda t: t.replace(f"Tr_velo_to_cam: {VELO_TEXT}\n", ""),
            r"000000\.txt: missing key 'Tr_velo_to_cam' / 'Tr_velo_cam'",
        ),
        (
            lambda t: t.replace(P2_TEXT, P2_TEXT.rsplit(" ", 1)[0]),
            r"000000\.txt:3: key 'P2': expected 12 numbers, got 11",
        ),
        (
            lambda t: t.replace("9.999421000000e-01", "nan"),
            r"000000\.txt:5: key 'R0_rect': non-finite value",
        ),
        (
            lambda t: t.replace("9.999421000000e-01", "abc"),
            r"000000\.txt:5: key 'R0_rect': non-numeric value",
        ),
        (
            lambda t: t + "P2: " + P2_TEXT + "\n",
            r"000000\.txt:8: key 'P2' repeated \(first on line 3\)",
        ),
        (lambda t: t + "1.0 2.0\n", r"000000\.txt:8: expected 'key: values'"),
    ],
)
def test_object_calib_errors_name_file_line_and_key(tmp_path, edit, pattern):
    path = tmp_path / "000000.txt"
    path.write_text(edit(REAL_OBJECT_CALIB))
    with pytest.raises(CalibrationError, match=pattern):
        read_object_calib(path)


def test_missing_calib_file_is_a_calibration_error(tmp_path):
    with pytest.raises(CalibrationError, match=r"nothere\.txt: cannot read calibration file"):
        read_object_calib(tmp_path / "nothere.txt")


def test_real_raw_calib_parses_to_the_published_numbers(date_dir):
    raw = read_raw_calib(date_dir)
    assert raw.calib_time == "09-Jan-2012 13:57:47"
    assert raw.corner_dist == 0.0995
    assert raw.cameras[0].K[0, 0] == 984.2439
    assert raw.cameras[0].T[0] == 2.573699e-16
    assert raw.cameras[1].T[0] == -0.537
    assert raw.cameras[2].D[4] == -6.770705e-02
    assert raw.cameras[3].P_rect[0, 3] == -339.5242
    np.testing.assert_array_equal(raw.cameras[2].S, [1392.0, 512.0])
    assert raw.image_hw(2) == (375, 1242)
    assert raw.velo_to_cam.calib_time == "15-Mar-2012 11:37:16"
    assert raw.velo_to_cam.R[2, 0] == 0.9998621
    assert raw.velo_to_cam.T[2] == -0.2717806
    np.testing.assert_array_equal(raw.velo_to_cam.delta_f, [0.0, 0.0])
    assert raw.imu_to_velo.delta_f is None
    assert raw.imu_to_velo.T[0] == -0.8086759


def test_raw_and_object_calib_agree_on_camera_2(date_dir, object_calib_path):
    from_raw = read_raw_calib(date_dir).camera_calib(2)
    from_object = read_object_calib(object_calib_path).camera_calib()
    np.testing.assert_array_equal(from_raw.P2, from_object.P2)
    np.testing.assert_array_equal(from_raw.R0_rect, from_object.R0_rect)
    np.testing.assert_array_equal(from_raw.T_cam_from_lidar, from_object.T_cam_from_lidar)
    np.testing.assert_array_equal(read_raw_calib(date_dir).camera_calib(3).P2[0, 3], -339.5242)


def test_raw_calib_write_reproduces_the_real_files(date_dir, tmp_path):
    out = tmp_path / "copy"
    write_raw_calib(out, read_raw_calib(date_dir))
    assert (out / "calib_cam_to_cam.txt").read_text() == REAL_CAM_TO_CAM
    assert (out / "calib_velo_to_cam.txt").read_text() == REAL_VELO_TO_CAM
    assert (out / "calib_imu_to_velo.txt").read_text() == REAL_IMU_TO_VELO


def test_raw_calib_from_camera_calib_reproduces_it_exactly_through_files(tmp_path):
    camera = random_camera_calib(1)
    raw = raw_calib_from_camera_calib(camera, image_hw=(370, 1224))
    first, second = tmp_path / "a", tmp_path / "b"
    write_raw_calib(first, raw)
    back = read_raw_calib(first)
    assert back == raw
    for result in (raw.camera_calib(2), back.camera_calib(2)):
        np.testing.assert_array_equal(result.P2, camera.P2)
        np.testing.assert_array_equal(result.R0_rect, camera.R0_rect)
        np.testing.assert_array_equal(result.T_cam_from_lidar, camera.T_cam_from_lidar)
    assert back.image_hw(2) == (370, 1224)
    write_raw_calib(second, back)
    for name in ("calib_cam_to_cam.txt", "calib_velo_to_cam.txt", "calib_imu_to_velo.txt"):
        assert (first / name).read_bytes() == (second / name).read_bytes()


def test_raw_calib_from_camera_calib_is_a_plausible_rig(date_dir):
    real = read_raw_calib(date_dir)
    raw = raw_calib_from_camera_calib(real.camera_calib(2))
    # Camera 2 sits where P_rect_02's offset puts it: K @ T_02 = P_rect_02[:, 3].
    np.testing.assert_allclose(raw.cameras[2].K @ raw.cameras[2].T, real.cameras[2].P_rect[:, 3])
    assert raw.cameras[1].T[0] == pytest.approx(real.cameras[1].T[0], rel=0.01)  # -0.54 vs -0.537
    np.testing.assert_array_equal(raw.cameras[0].P_rect, real.cameras[0].P_rect)
    assert raw.image_hw(0) == (375, 1242)


def test_raw_calib_errors(date_dir):
    text = REAL_CAM_TO_CAM.replace("P_rect_02: 7.215377e+02 ", "P_rect_02: ")
    (date_dir / "calib_cam_to_cam.txt").write_text(text)
    with pytest.raises(
        CalibrationError,
        match=r"calib_cam_to_cam\.txt:26: key 'P_rect_02': "
        r"expected 12 numbers, got 11",
    ):
        read_raw_calib(date_dir)
    (date_dir / "calib_cam_to_cam.txt").write_text(REAL_CAM_TO_CAM)
    (date_dir / "calib_velo_to_cam.txt").write_text(REAL_VELO_TO_CAM.replace("T: ", "X: "))
    with pytest.raises(CalibrationError, match=r"calib_velo_to_cam\.txt: missing key 'T'"):
        read_raw_calib(date_dir)
    (date_dir / "calib_imu_to_velo.txt").unlink()
    (date_dir / "calib_velo_to_cam.txt").write_text(REAL_VELO_TO_CAM)
    with pytest.raises(CalibrationError, match=r"calib_imu_to_velo\.txt: cannot read"):
        read_raw_calib(date_dir)
    with pytest.raises(CalibrationError, match=r"missing/calib_cam_to_cam\.txt: cannot read"):
        read_raw_calib(date_dir.parent / "missing")


def test_raw_calib_needs_four_cameras(date_dir):
    raw = read_raw_calib(date_dir)
    with pytest.raises(CalibrationError, match=r"RawCalib needs 4 cameras, got 3"):
        RawCalib(cameras=raw.cameras[:3], velo_to_cam=raw.velo_to_cam, imu_to_velo=raw.imu_to_velo)
    with pytest.raises(CalibrationError, match=r"camera index must be 0\.\.3, got 4"):
        raw.camera_calib(4)
