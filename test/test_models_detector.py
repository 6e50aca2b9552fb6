"""Specification of the assembled models: shapes, grid alignment of F_T / F_TA / F_S, inference."""

from __future__ import annotations

import pytest
import torch
from helpers_models import T_RECT_FROM_LIDAR, camera_P2, tiny_config

from monotakd_ros.models import build_assistant, build_student, build_teacher
from monotakd_ros.models.config import DepthBinsConfig
from monotakd_ros.models.lifting import lidar_depth_one_hot, voxel_centres_lidar


def test_teacher_assistant_student_share_one_bev_grid() -> None:
    torch.manual_seed(0)
    cfg = tiny_config()
    teacher, ta, student = build_teacher(cfg), build_assistant(cfg), build_student(cfg)
    batch, (h, w) = 2, cfg.image.input_hw
    images = torch.randn(batch, 3, h, w)
    P2 = camera_P2(80.0, (h, w)).expand(batch, 3, 4)
    T = torch.tensor(T_RECT_FROM_LIDAR, dtype=torch.float32).expand(batch, 4, 4)
    depth = torch.where(torch.rand(batch, h, w) < 0.2, 2 + 12 * torch.rand(batch, h, w),
                        torch.zeros(batch, h, w))
    points = [torch.rand(300, 4) * torch.tensor([12.0, 12.0, 4.0, 1.0])
              + torch.tensor([2.5, -6.0, -3.0, 0.0]) for _ in range(batch)]
    t_out, ta_out, s_out = teacher(points), ta(images, P2, T, depth), student(images, P2, T)
    grid_shape = (batch, cfg.bev_channels, cfg.grid.ny, cfg.grid.nx)
    assert t_out.features.bev.shape == grid_shape
    for features in (ta_out.features, s_out.features):
        assert features.bev_visual.shape == grid_shape
        assert features.bev_spatial.shape == grid_shape
        assert features.bev_fused.shape == grid_shape
    anchors = cfg.grid.ny * cfg.grid.nx * 3 * 2
    for out in (t_out.head, ta_out.head, s_out.head):
        assert out.cls_logits.shape == (batch, anchors, 3)
        assert out.box_residuals.shape == (batch, anchors, 7)
        assert out.dir_logits.shape == (batch, anchors, 2)
    assert ta_out.features.depth_logits is None
    assert s_out.features.depth_logits.shape == (batch, 17, h // 8, w // 8)
    assert ta.depth_head is None and student.depth_head is not None


def test_lidar_point_and_its_depth_pixel_land_in_the_same_bev_cell() -> None:
    """A LiDAR cluster lights teacher cell (j, i); the TA lifts its depth pixel to (j, i) too."""
    # LID bins finer than the 0.64 m cells (~0.1 m at 8 m), so depth cannot blur across cells.
    cfg = tiny_config(depth=DepthBinsConfig(num_bins=200, min_m=2.0, max_m=14.8))
    teacher, ta = build_teacher(cfg).eval(), build_assistant(cfg).eval()
    j, i, k = 11, 9, 2  # BEV row (y), column (x), height slice
    centre = voxel_centres_lidar(cfg.grid)[k, j, i]  # (x, y, z) LiDAR
    # Teacher: a small cluster inside cell (j, i).
    offsets = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.1, -0.1, 0.2, 0.0], [-0.2, 0.15, -0.1, 0.0]])
    cluster = torch.cat([centre, torch.tensor([0.5])]) + offsets
    pseudo = teacher.pillars([cluster])  # (1, C, ny, nx)
    lit = (pseudo.abs().sum(dim=1)[0] > 0).nonzero().tolist()
    assert lit == [[j, i]]
    # TA: a depth map whose only returns are the 8x8 block holding the point's projection.
    h, w = 96, 160
    focal = 300.0  # one 0.64 m cell spans > 2 feature cells at this range: no ambiguity
    P2 = camera_P2(focal, (h, w))
    T = torch.tensor(T_RECT_FROM_LIDAR, dtype=torch.float32)
    rect = T @ torch.cat([centre, torch.ones(1)])
    u = float(P2[0, 0] * rect[0] / rect[2] + P2[0, 2])
    v = float(P2[1, 1] * rect[1] / rect[2] + P2[1, 2])
    row, col = int((v + 0.5) // 8), int((u + 0.5) // 8)
    depth = torch.zeros(1, h, w)
    depth[0, 8 * row:8 * row + 8, 8 * col:8 * col + 8] = float(rect[2])
    probs = lidar_depth_one_hot(depth, 8, cfg.depth)
    features = torch.ones(1, cfg.image_channels, h // 8, w // 8)
    frustum = features.unsqueeze(2) * probs[:, :-1].unsqueeze(1)
    voxels = ta.to_voxels(frustum, P2[None], T[None], (h, w))  # (1, C, Z, ny, nx)
    energy = voxels.sum(dim=(1, 2))[0]
    assert divmod(int(energy.argmax()), cfg.grid.nx) == (j, i)
    assert voxels.sum(dim=(1, 3, 4))[0].argmax() == k  # and in the right height slice


def test_student_inference_needs_only_image_and_p2() -> None:
    torch.manual_seed(0)
    cfg = tiny_config()
    student = build_student(cfg).eval()
    h, w = cfg.image.input_hw
    images, P2 = torch.randn(1, 3, h, w), camera_P2(80.0, (h, w))[None]
    with torch.no_grad():
        implicit = student(images, P2)
        explicit = student(images, P2, torch.tensor(T_RECT_FROM_LIDAR, dtype=torch.float32)[None])
    torch.testing.assert_close(implicit.head.cls_logits, explicit.head.cls_logits)
    torch.testing.assert_close(implicit.features.bev_fused, explicit.features.bev_fused)
    assert implicit.features.bev_visual.abs().sum() > 0  # the image really reached the grid


def test_odd_input_sizes_are_padded_not_misaligned() -> None:
    """A 90x150 image gives what the same image zero-padded at the bottom/right by hand gives.

    Padding there keeps every pixel's coordinates, so P2 still holds; padding on the top/left
    (shifting the pixels) changes the result, which shows the comparison can fail.
    """
    torch.manual_seed(0)
    cfg = tiny_config()
    student = build_student(cfg).eval()
    P2 = camera_P2(80.0, (90, 150))[None]
    image = torch.randn(1, 3, 90, 150)
    with torch.no_grad():
        odd = student(image, P2).features
        by_hand = student(torch.nn.functional.pad(image, (0, 2, 0, 6)), P2).features  # 96x152
        shifted = student(torch.nn.functional.pad(image, (2, 0, 6, 0)), P2).features
    assert odd.depth_logits.shape[-2:] == (12, 19)  # ceil(90/8), ceil(150/8)
    torch.testing.assert_close(odd.bev_visual, by_hand.bev_visual, rtol=0, atol=0)
    torch.testing.assert_close(odd.bev_fused, by_hand.bev_fused, rtol=0, atol=0)
    # Shifted pixels land in other cells: the map changes by most of its size (0.9 measured).
    assert (odd.bev_visual - shifted.bev_visual).abs().max() > 0.5 * odd.bev_visual.abs().max()


def test_input_contract_errors() -> None:
    cfg = tiny_config()
    ta, student = build_assistant(cfg), build_student(cfg)
    images = torch.randn(1, 3, 96, 160)
    P2 = camera_P2(80.0, (96, 160))[None]
    with pytest.raises(ValueError, match="depth_maps"):
        ta(images, P2)
    with pytest.raises(ValueError, match=r"P2 must be \(B, 3, 4\)"):
        student(images, P2[:, :2])
    with pytest.raises(ValueError, match="images must be"):
        student(images[:, :1], P2)
    with pytest.raises(ValueError, match="depth_source"):
        from monotakd_ros.models.camera_detector import CameraBevDetector

        CameraBevDetector(cfg, "stereo")  # type: ignore[arg-type]


def test_teacher_pillars_match_a_loop_reference() -> None:
    """Vectorised pillar max-pooling equals a per-pillar Python loop (the slow, obvious way)."""
    torch.manual_seed(1)
    cfg = tiny_config()
    teacher = build_teacher(cfg).eval()
    pillars = teacher.pillars
    points = torch.rand(200, 4) * torch.tensor([3.0, 3.0, 5.0, 1.0]) + torch.tensor(
        [4.0, -1.0, -3.5, 0.0])  # some points fall outside z range
    dense = pillars([points])[0]  # (C, ny, nx)
    g = cfg.grid
    inside = (points[:, 2] >= g.z_range_m[0]) & (points[:, 2] < g.z_range_m[1])
    pts = points[inside]
    ix = ((pts[:, 0] - g.x_range_m[0]) // g.cell_m).long()
    iy = ((pts[:, 1] - g.y_range_m[0]) // g.cell_m).long()
    reference = torch.zeros_like(dense)
    for cy, cx in {(int(a), int(b)) for a, b in zip(iy, ix, strict=True)}:
        members = pts[(iy == cy) & (ix == cx)]
        mean = members[:, :3].mean(dim=0)
        centre_x = g.x_range_m[0] + (cx + 0.5) * g.cell_m
        centre_y = g.y_range_m[0] + (cy + 0.5) * g.cell_m
        decorated = torch.cat([members, members[:, :3] - mean,
                               (members[:, :1] - centre_x), (members[:, 1:2] - centre_y)], dim=1)
        with torch.no_grad():
            feats = torch.relu(pillars.norm(pillars.linear(decorated)))
        reference[:, cy, cx] = feats.max(dim=0).values
    torch.testing.assert_close(dense.detach(), reference, atol=1e-5, rtol=1e-5)
    assert int((dense.abs().sum(dim=0) > 0).sum()) == len({(int(a), int(b))
                                                           for a, b in zip(iy, ix, strict=True)})


def test_teacher_handles_empty_clouds() -> None:
    """No points: an all-zero pillar map, the same head output as a cloud outside the grid."""
    torch.manual_seed(0)
    cfg = tiny_config()
    teacher = build_teacher(cfg).eval()
    outside = torch.tensor([[1.0, 0.0, -1.0, 0.5], [5.0, 0.0, 9.0, 0.5]])  # x < x_min, z > z_max
    with torch.no_grad():
        out = teacher([torch.zeros(0, 4), torch.zeros(0, 4)])
        reference = teacher([outside])
        seen = teacher([torch.tensor([[5.0, 0.3, -1.0, 0.5], [7.1, 1.2, -0.5, 0.2]])])
    assert out.features.bev.shape == (2, 16, cfg.grid.ny, cfg.grid.nx)
    assert int(out.features.bev.count_nonzero()) == 0
    for frame in range(2):
        torch.testing.assert_close(out.head.cls_logits[frame], reference.head.cls_logits[0],
                                   rtol=0, atol=0)
    # Two points inside the grid do change the map (the comparison above can fail).
    assert int(seen.features.bev.count_nonzero()) > 0


def test_models_run_under_autocast() -> None:
    """Mixed precision (bf16 on the CPU stands in for fp16 on a GPU) stays close to fp32."""
    torch.manual_seed(0)
    cfg = tiny_config()
    teacher, student = build_teacher(cfg), build_student(cfg)
    h, w = cfg.image.input_hw
    points = [torch.rand(100, 4) * 5 + torch.tensor([3.0, -2.0, -2.0, 0.0])]
    teacher, student = teacher.eval(), student.eval()
    images, P2 = torch.randn(1, 3, h, w), camera_P2(80.0, (h, w))[None]
    with torch.no_grad():
        t_ref, s_ref = teacher(points), student(images, P2)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            t_out, s_out = teacher(points), student(images, P2)
    # (low precision, fp32, bound on max |error| / max |fp32|); bf16 keeps 8 mantissa bits
    # (0.4 %). Measured 0.0053, 0.0025, 0.079 (the frustum lifting multiplies two small
    # quantities), 0.00035.
    checks = ((t_out.features.bev, t_ref.features.bev, 0.03),
              (t_out.head.cls_logits, t_ref.head.cls_logits, 0.02),
              (s_out.features.bev_visual, s_ref.features.bev_visual, 0.15),
              (s_out.head.cls_logits, s_ref.head.cls_logits, 0.02))
    errors = [float((low.float() - full).abs().max() / full.abs().max())
              for low, full, _ in checks]
    assert all(error < bound for error, (_, _, bound) in zip(errors, checks, strict=True)), errors
    assert max(errors) > 1e-4  # autocast really ran in bf16


def test_freeze_sets_eval_and_stops_gradients() -> None:
    from monotakd_ros.models import freeze

    teacher = freeze(build_teacher(tiny_config()))
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
