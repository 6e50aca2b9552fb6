"""Greedy ground truth <-> detection matching of the KITTI devkit, vectorised over all frames.

The devkit walks each frame's ground truth in file order and gives each one the best free
detection overlapping it above the IoU threshold: the highest score when collecting the scores
of true positives, the largest overlap when counting TP/FP/FN at a score threshold (a detection
too small to count is taken only when no counted one qualifies). Frames are independent, and so
are the connected groups of the "overlaps above threshold" graph inside a frame.

Nearly every group is a lone box or one ground truth with one detection. There the greedy has a
closed form: the pair matches exactly when the detection is above the score threshold, so its
TP/FN effect at every threshold is a count over sorted scores. Groups where boxes compete (one
detection over two ground truths, or two detections on one) are replayed literally, per frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from monotakd_ros.eval.difficulty import COUNTED, UNRELATED


@dataclass(frozen=True)
class MatchProblem:
    """Everything one (class, difficulty, metric) matching depends on; indices are flat."""

    edge_gt: np.ndarray  # (E,) ground truth of each same-frame pair overlapping above threshold
    edge_det: np.ndarray  # (E,) detection of each such pair
    edge_overlap: np.ndarray  # (E,) its IoU
    edge_similarity: np.ndarray  # (E,) (1 + cos(alpha_gt - alpha_det)) / 2, for AOS
    gt_flags: np.ndarray  # (N_gt,) COUNTED / IGNORED / UNRELATED
    gt_frame: np.ndarray  # (N_gt,)
    det_flags: np.ndarray  # (N_det,) COUNTED / IGNORED / UNRELATED
    det_score: np.ndarray  # (N_det,)
    det_on_dontcare: np.ndarray  # (N_det,) bool: an unmatched detection here is no FP


@dataclass(frozen=True)
class PrCounts:
    """Totals over all frames at each of T score thresholds."""

    tp: np.ndarray  # (T,) int
    fp: np.ndarray  # (T,) int
    fn: np.ndarray  # (T,) int
    similarity: np.ndarray  # (T,) summed orientation similarity of the true positives


def _count_at_or_above(
    scores: np.ndarray, thresholds: np.ndarray, weights: np.ndarray | None = None
) -> np.ndarray:
    """(T,) number (or summed weight) of ``scores`` >= each threshold (the devkit keeps >=)."""
    order = np.argsort(scores, kind="stable")
    below = np.searchsorted(scores[order], thresholds, side="left")  # (T,) how many < t
    if weights is None:
        return len(scores) - below
    tail_sums = np.concatenate([np.cumsum(weights[order][::-1])[::-1], [0.0]])
    return tail_sums[below]


class _Contest:
    """The competing ground truth and detections of one frame, matched exactly as the devkit."""

    def __init__(self, problem: MatchProblem, gts: np.ndarray, dets: np.ndarray,
                 edges: np.ndarray) -> None:
        self.gt_counted = (problem.gt_flags[gts] == COUNTED).tolist()
        self.det_counted = (problem.det_flags[dets] == COUNTED).tolist()
        self.det_score = problem.det_score[dets]
        self._score_list = self.det_score.tolist()
        self.det_frees_fp = (problem.det_on_dontcare[dets]).tolist()
        gt_pos = {int(g): i for i, g in enumerate(gts)}
        det_pos = {int(d): j for j, d in enumerate(dets)}
        # candidates[i]: (detection position, overlap, similarity) in file order of detections
        self.candidates: list[list[tuple[int, float, float]]] = [[] for _ in gts]
        for e in edges[np.argsort(problem.edge_det[edges], kind="stable")]:
            self.candidates[gt_pos[int(problem.edge_gt[e])]].append(
                (det_pos[int(problem.edge_det[e])], float(problem.edge_overlap[e]),
                 float(problem.edge_similarity[e]))
            )

    def _assign(self, active: list[bool], by_score: bool) -> list[int]:
        """Detection position matched to each ground truth (-1: none), in ground truth order."""
        taken = [False] * len(active)
        matched = []
        for candidates in self.candidates:
            best, best_key, best_is_counted = -1, -np.inf, False
            for j, overlap, _ in candidates:
                if taken[j] or not active[j]:
                    continue
                if by_score:
                    if self._score_list[j] > best_key:
                        best, best_key = j, self._score_list[j]
                elif self.det_counted[j]:
                    if overlap > best_key or not best_is_counted:
                        best, best_key, best_is_counted = j, overlap, True
                elif best < 0:  # a too-small detection only when nothing better showed up
                    best = j
            if best >= 0:
                taken[best] = True
            matched.append(best)
        return matched

    def true_positive_scores(self) -> list[float]:
        """Scores of the true positives when every detection is in play (highest score wins)."""
        matched = self._assign([True] * len(self.det_counted), by_score=True)
        return [self._score_list[j] for i, j in enumerate(matched)
                if j >= 0 and self.gt_counted[i] and self.det_counted[j]]

    def counts(self, num_active: int) -> tuple[int, int, int, float]:
        """(tp, fp, fn, similarity) when the ``num_active`` best-scored detections are in play."""
        order = np.argsort(-self.det_score, kind="stable")
        active = [False] * len(self.det_counted)
        for j in order[:num_active]:
            active[int(j)] = True
        matched = self._assign(active, by_score=False)
        tp = fn = 0
        similarity = 0.0
        for i, j in enumerate(matched):
            if j < 0:
                fn += int(self.gt_counted[i])
            elif self.gt_counted[i] and self.det_counted[j]:
                tp += 1
                similarity += next(s for d, _, s in self.candidates[i] if d == j)
        taken = set(matched)
        fp = sum(1 for j, on in enumerate(active)
                 if on and j not in taken and self.det_counted[j] and not self.det_frees_fp[j])
        return tp, fp, fn, similarity


class GreedyMatcher:
    """TP scores and TP/FP/FN counts at score thresholds for one (class, difficulty, metric)."""

    def __init__(self, problem: MatchProblem) -> None:
        self.problem = problem
        p = problem
        in_play = (p.gt_flags[p.edge_gt] != UNRELATED) & (p.det_flags[p.edge_det] != UNRELATED)
        edges = np.flatnonzero(in_play)
        gt_degree = np.bincount(p.edge_gt[edges], minlength=len(p.gt_flags))
        det_degree = np.bincount(p.edge_det[edges], minlength=len(p.det_flags))
        lone = (gt_degree[p.edge_gt[edges]] == 1) & (det_degree[p.edge_det[edges]] == 1)
        self.pairs = edges[lone]
        self.num_counted_gt = int(np.count_nonzero(p.gt_flags == COUNTED))
        self.unmatchable_gt = int(np.count_nonzero((p.gt_flags == COUNTED) & (gt_degree == 0)))
        self.free_fp_scores = p.det_score[
            (p.det_flags == COUNTED) & (det_degree == 0) & ~p.det_on_dontcare
        ]
        self.contests = self._contests(edges[~lone])

    def _contests(self, edges: np.ndarray) -> list[_Contest]:
        """One literal-matching group per frame holding competing boxes."""
        p = self.problem
        frames = p.gt_frame[p.edge_gt[edges]]
        order = np.argsort(frames, kind="stable")
        edges, frames = edges[order], frames[order]
        bounds = np.flatnonzero(np.diff(frames)) + 1
        contests = []
        for frame_edges in np.split(edges, bounds) if len(edges) else []:
            gts = np.unique(p.edge_gt[frame_edges])  # flat order = file order in the frame
            dets = np.unique(p.edge_det[frame_edges])
            contests.append(_Contest(p, gts, dets, frame_edges))
        return contests

    def true_positive_scores(self) -> np.ndarray:
        """Scores of all true positives with every detection in play (the devkit's ``v``)."""
        p = self.problem
        counted = (p.gt_flags[p.edge_gt[self.pairs]] == COUNTED) & (
            p.det_flags[p.edge_det[self.pairs]] == COUNTED
        )
        lone_scores = p.det_score[p.edge_det[self.pairs[counted]]]
        contest_scores = [s for contest in self.contests for s in contest.true_positive_scores()]
        return np.concatenate([lone_scores, np.asarray(contest_scores, dtype=np.float64)])

    def counts(self, thresholds: np.ndarray) -> PrCounts:
        """TP/FP/FN and orientation similarity summed over frames at each score threshold."""
        p = self.problem
        pair_det = p.edge_det[self.pairs]
        pair_score = p.det_score[pair_det]
        gt_counted = p.gt_flags[p.edge_gt[self.pairs]] == COUNTED
        is_tp = gt_counted & (p.det_flags[pair_det] == COUNTED)
        tp = _count_at_or_above(pair_score[is_tp], thresholds).astype(np.int64)
        similarity = _count_at_or_above(
            pair_score[is_tp], thresholds, p.edge_similarity[self.pairs[is_tp]]
        ).astype(np.float64)
        # A counted ground truth whose only partner is below the threshold is missed.
        fn = np.count_nonzero(gt_counted) - _count_at_or_above(pair_score[gt_counted], thresholds)
        fn = fn + self.unmatchable_gt
        fp = _count_at_or_above(self.free_fp_scores, thresholds).astype(np.int64)
        for contest in self.contests:
            # Detections in play at threshold t: those scoring >= t, a prefix by score.
            num_active = _count_at_or_above(contest.det_score, thresholds)
            for k in np.unique(num_active):
                at = num_active == k
                c_tp, c_fp, c_fn, c_similarity = contest.counts(int(k))
                tp[at] += c_tp
                fp[at] += c_fp
                fn[at] += c_fn
                similarity[at] += c_similarity
        return PrCounts(tp=tp, fp=fp, fn=np.asarray(fn, dtype=np.int64), similarity=similarity)
