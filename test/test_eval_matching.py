"""GreedyMatcher: hand-made contests, and a literal frame-by-frame replay of the devkit loop."""

from __future__ import annotations

import numpy as np
import pytest

from monotakd_ros.eval.difficulty import COUNTED, IGNORED, UNRELATED
from monotakd_ros.eval.matching import GreedyMatcher, MatchProblem


def problem(edges: list[tuple[int, int, float]], gt_flags: list[int], det_flags: list[int],
            scores: list[float], gt_frame: list[int] | None = None,
            on_dontcare: list[bool] | None = None,
            similarity: list[float] | None = None) -> MatchProblem:
    """A MatchProblem from (gt, det, overlap) edges already above the IoU threshold."""
    gts, dets, overlaps = (np.array(column) for column in zip(*edges, strict=True)) if edges \
        else (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    return MatchProblem(
        edge_gt=gts.astype(np.int64),
        edge_det=dets.astype(np.int64),
        edge_overlap=overlaps.astype(np.float64),
        edge_similarity=np.array(similarity if similarity else [1.0] * len(edges)),
        gt_flags=np.array(gt_flags, np.int8),
        gt_frame=np.array(gt_frame if gt_frame else [0] * len(gt_flags), np.int64),
        det_flags=np.array(det_flags, np.int8),
        det_score=np.array(scores, np.float64),
        det_on_dontcare=np.array(on_dontcare if on_dontcare else [False] * len(det_flags)),
    )


def counts_at(matcher: GreedyMatcher, threshold: float) -> tuple[int, int, int, float]:
    c = matcher.counts(np.array([threshold]))
    return int(c.tp[0]), int(c.fp[0]), int(c.fn[0]), float(c.similarity[0])


def test_first_ground_truth_in_file_order_takes_a_shared_detection():
    # One detection above threshold on both: the devkit walks ground truth in file order, so
    # gt 0 takes it (even though gt 1 overlaps more) and gt 1 is missed.
    matcher = GreedyMatcher(problem([(0, 0, 0.75), (1, 0, 0.9)], [COUNTED, COUNTED], [COUNTED],
                                    [0.8]))
    assert counts_at(matcher, 0.8) == (1, 0, 1, 1.0)
    np.testing.assert_array_equal(matcher.true_positive_scores(), [0.8])


def test_score_picks_the_threshold_largest_overlap_picks_the_match():
    # det 0: overlap 0.95, score 0.5; det 1: overlap 0.8, score 0.9.
    p = problem([(0, 0, 0.95), (0, 1, 0.8)], [COUNTED], [COUNTED, COUNTED], [0.5, 0.9],
                similarity=[0.25, 1.0])
    matcher = GreedyMatcher(p)
    np.testing.assert_array_equal(matcher.true_positive_scores(), [0.9])  # highest score
    assert counts_at(matcher, 0.9) == (1, 0, 0, 1.0)  # only det 1 in play
    assert counts_at(matcher, 0.5) == (1, 1, 0, 0.25)  # det 0 wins on overlap, det 1 is FP


def test_equal_overlaps_go_to_the_first_detection_in_file_order():
    p = problem([(0, 0, 0.8), (0, 1, 0.8)], [COUNTED], [COUNTED, COUNTED], [0.6, 0.7],
                similarity=[0.25, 1.0])
    assert counts_at(GreedyMatcher(p), 0.6) == (1, 1, 0, 0.25)


def test_too_small_detection_matches_only_when_no_counted_one_does():
    # det 0 is IGNORED (too small) with the larger overlap; det 1 is counted.
    p = problem([(0, 0, 0.9), (0, 1, 0.75)], [COUNTED], [IGNORED, COUNTED], [0.9, 0.6])
    matcher = GreedyMatcher(p)
    assert counts_at(matcher, 0.6) == (1, 0, 0, 1.0)  # counted det 1 preferred, det 0 not FP
    assert counts_at(matcher, 0.9) == (0, 0, 0, 0.0)  # det 0 absorbs the gt: no TP, no FN
    np.testing.assert_array_equal(matcher.true_positive_scores(), np.zeros(0))


def test_lone_pairs_unmatched_boxes_and_dontcare():
    # frame 0: gt 0 - det 0 (TP); gt 1 alone (FN); det 1 alone (FP); det 2 alone on DontCare.
    # frame 1: IGNORED gt 2 - det 3 (neither); det 4 UNRELATED (never looked at).
    p = problem([(0, 0, 0.8), (2, 3, 0.9)], [COUNTED, COUNTED, IGNORED],
                [COUNTED, COUNTED, COUNTED, COUNTED, UNRELATED], [0.7, 0.6, 0.9, 0.95, 1.0],
                gt_frame=[0, 0, 1], on_dontcare=[False, False, True, False, False])
    matcher = GreedyMatcher(p)
    assert counts_at(matcher, 0.6) == (1, 1, 1, 1.0)
    assert counts_at(matcher, 0.65) == (1, 0, 1, 1.0)  # det 1 below the threshold
    assert counts_at(matcher, 0.75) == (0, 0, 2, 0.0)  # det 0 too: gt 0 missed
    assert matcher.num_counted_gt == 2


def _literal_frame(overlap: np.ndarray, gt_flags, det_flags, scores, on_dontcare, similarity,
                   threshold: float, collect_scores: bool):
    """The devkit's per-frame statistics, loop for loop (overlap 0 = below the IoU threshold)."""
    assigned = [False] * len(det_flags)
    tp = fp = fn = 0
    sim = 0.0
    tp_scores = []
    for i in range(len(gt_flags)):
        if gt_flags[i] == UNRELATED:
            continue
        det_idx, valid, max_overlap, took_ignored = -1, None, 0.0, False
        for j in range(len(det_flags)):
            if det_flags[j] == UNRELATED or assigned[j]:
                continue
            if not collect_scores and scores[j] < threshold:
                continue
            if overlap[i, j] <= 0.0:
                continue
            if collect_scores:
                if valid is None or scores[j] > valid:
                    det_idx, valid = j, scores[j]
            elif det_flags[j] == COUNTED and (overlap[i, j] > max_overlap or took_ignored):
                det_idx, valid, max_overlap, took_ignored = j, 1, overlap[i, j], False
            elif det_flags[j] == IGNORED and valid is None:
                det_idx, valid, took_ignored = j, 1, True
        if valid is None:
            fn += gt_flags[i] == COUNTED
        elif gt_flags[i] == IGNORED or det_flags[det_idx] == IGNORED:
            assigned[det_idx] = True
        else:
            tp += 1
            tp_scores.append(scores[det_idx])
            sim += similarity[i, det_idx]
            assigned[det_idx] = True
    for j in range(len(det_flags)):
        if not collect_scores and not assigned[j] and det_flags[j] == COUNTED \
                and scores[j] >= threshold and not on_dontcare[j]:
            fp += 1
    return tp, fp, fn, sim, tp_scores


@pytest.mark.parametrize("seed", range(6))
def test_agrees_with_a_literal_replay_on_crowded_random_frames(seed: int):
    rng = np.random.default_rng(seed)
    frames, edges, sims = [], [], []
    gt_flags, det_flags, scores, gt_frame, on_dc = [], [], [], [], []
    for f in range(60):
        g, d = int(rng.integers(0, 6)), int(rng.integers(0, 7))
        # Dense overlaps so that many detections compete; ties in overlaps and scores on purpose.
        values = rng.choice([0.6, 0.75, 0.9], (g, d)) if seed % 2 else rng.uniform(0.5, 1, (g, d))
        overlap = np.where(rng.random((g, d)) < 0.45, values, 0.0)
        similarity = rng.random((g, d))
        fg = rng.choice([COUNTED, COUNTED, IGNORED, UNRELATED], g)
        fd = rng.choice([COUNTED, COUNTED, COUNTED, IGNORED, UNRELATED], d)
        sc = rng.choice([0.2, 0.5, 0.5, 0.8], d) if seed % 2 else rng.random(d)
        dc = rng.random(d) < 0.2
        g0, d0 = len(gt_flags), len(det_flags)
        for i, j in zip(*np.nonzero(overlap), strict=True):
            edges.append((g0 + i, d0 + j, overlap[i, j]))
            sims.append(similarity[i, j])
        frames.append((overlap, fg, fd, sc, dc, similarity))
        gt_flags += fg.tolist()
        det_flags += fd.tolist()
        scores += sc.tolist()
        gt_frame += [f] * g
        on_dc += dc.tolist()
    matcher = GreedyMatcher(problem(edges, gt_flags, det_flags, scores, gt_frame, on_dc, sims))

    literal_scores = sorted(s for fr in frames for s in _literal_frame(*fr, 0.0, True)[4])
    np.testing.assert_allclose(np.sort(matcher.true_positive_scores()), literal_scores)
    thresholds = np.unique(np.concatenate([scores, [0.0, 0.35, 2.0]]))[::-1]
    got = matcher.counts(thresholds)
    for t, threshold in enumerate(thresholds):
        literal = np.array([_literal_frame(*fr, threshold, False)[:4] for fr in frames]).sum(0)
        assert (got.tp[t], got.fp[t], got.fn[t]) == tuple(literal[:3].astype(int))
        assert got.similarity[t] == pytest.approx(literal[3])
