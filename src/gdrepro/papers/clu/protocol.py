"""What the UG-CLU experiment asks of every method, in plain numpy (no torch, so the stages that
do not train never load it): the methods compared, as switches of the unified update that
:mod:`method` runs; the three request sequences; and the scores of a model's predictions
(accuracy, the entropy membership-inference attack, backward transfer)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# --- methods and requests --------------------------------------------------------------------------


@dataclass(frozen=True)
class Method:
    """A continual learning-unlearning method, as switches of the unified update.

    learn requests: ``replay`` adds the preserve term on the memory; ``ewc`` a quadratic penalty.
    unlearn requests: ``unlearn`` is ``"none"`` (fine-tune on the remaining memory), ``"ascent"``
    (gradient ascent on D_U) or ``"random_label"`` (SalUn); ``mask`` is ``"none"``, ``"fisher"``
    (balanced mask) or ``"salun"``; ``rollback`` restores the snapshot taken before the earliest
    task that holds unlearning data and replays the memory (our CLPU-style exact-ish removal).
    ``fast_slow`` takes the preserve gradient at the weights after the fast step (two SGD steps per
    iteration where the fast step runs); ``two_steps`` takes the same two SGD steps but evaluates the
    preserve gradient at the weights *before* the fast step: the equal-step control that isolates
    the Hessian compensation of fast-slow (issue 22).
    """

    name: str
    replay: bool = True
    unlearn: str = "none"
    mask: str = "none"
    adaptive: bool = False
    fast_slow: bool = False
    two_steps: bool = False
    ewc: bool = False
    rollback: bool = False

    @property
    def learn_phase(self) -> tuple[bool, bool, bool, bool]:
        """The switches that act on learn requests (replay, EWC, fast-slow, two steps): methods with
        the same run the same learn phase (mask, adaptive weights, the unlearning rule and rollback
        act only on unlearning requests)."""
        return self.replay, self.ewc, self.fast_slow, self.two_steps


METHODS: dict[str, Method] = {m.name: m for m in (
    Method("finetune", replay=False),
    Method("ga_ft", unlearn="ascent"),
    Method("salun", unlearn="random_label", mask="salun"),
    Method("ewc", replay=False, ewc=True),
    Method("replay"),
    Method("clpu", rollback=True),
    Method("ugclu", unlearn="ascent", mask="fisher", adaptive=True, fast_slow=True),
    Method("ugclu_no_mask", unlearn="ascent", mask="none", adaptive=True, fast_slow=True),
    Method("ugclu_no_adaptive", unlearn="ascent", mask="fisher", adaptive=False, fast_slow=True),
    Method("ugclu_no_fastslow", unlearn="ascent", mask="fisher", adaptive=True, fast_slow=False),
    Method("ugclu_two_steps", unlearn="ascent", mask="fisher", adaptive=True, two_steps=True),
)}
APPROXIMATE = tuple(METHODS)
BASELINES = ("finetune", "ga_ft", "salun", "ewc", "replay", "clpu")
ABLATIONS = ("ugclu_no_mask", "ugclu_no_adaptive", "ugclu_no_fastslow")
EQUAL_STEP_ABLATIONS = ("ugclu_no_mask", "ugclu_no_adaptive", "ugclu_two_steps")  # same SGD steps as UG-CLU
REPLAY_BASELINES = ("ga_ft", "salun", "replay", "clpu")  # the baselines that replay the memory while learning
ORACLES = ("retrain", "retrain_memory")  # all held data; what the incremental methods may keep (issue 22)
NAMES = {"retrain": "Retrain (all held data)", "retrain_memory": "Retrain (memory + new task)",
         "finetune": "Fine-tune", "ga_ft": "GA + FT", "salun": "SalUn", "ewc": "EWC", "replay": "Replay",
         "clpu": "CLPU-style", "ugclu": "UG-CLU", "ugclu_no_mask": "UG-CLU w/o mask",
         "ugclu_no_adaptive": "UG-CLU w/o adaptive", "ugclu_no_fastslow": "UG-CLU w/o fast-slow",
         "ugclu_two_steps": "UG-CLU w/o fast-slow, equal steps"}


@dataclass(frozen=True)
class Request:
    """One request: ``learn`` a task (``temporary`` in CLPU's sense), ``keep`` (make a temporary task
    permanent: no training), ``forget_task``, ``forget_class`` or ``forget_samples`` (a random
    ``fraction`` of everything held)."""

    kind: str
    task: int = -1
    klass: int = -1
    fraction: float = 0.0
    temporary: bool = False

    @property
    def label(self) -> str:
        if self.kind == "learn":
            return f"L{self.task}{'T' if self.temporary else 'R'}"
        return {"keep": f"K{self.task}", "forget_task": f"F{self.task}", "forget_class": f"Uc{self.klass}",
                "forget_samples": f"Us{int(round(100 * self.fraction))}%"}[self.kind]


def scenario(name: str, n_tasks: int = 5, classes_per_task: int = 2) -> list[Request]:
    """The three request sequences.

    - ``task_aware``: CLPU's [(0,R),(1,T),(2,T),(3,R),(1,R),(2,F),(4,T),(4,F)];
    - ``class``: cross-task class unlearning, classes of earlier tasks forgotten between learn requests;
    - ``samples``: random 10 % of all held training samples forgotten, twice.
    """
    if n_tasks != 5:
        raise ValueError("the scenarios are written for 5 tasks")
    c = classes_per_task
    learn = [Request("learn", t) for t in range(n_tasks)]
    if name == "task_aware":
        return [Request("learn", 0), Request("learn", 1, temporary=True), Request("learn", 2, temporary=True),
                Request("learn", 3), Request("keep", 1), Request("forget_task", 2),
                Request("learn", 4, temporary=True), Request("forget_task", 4)]
    if name == "class":
        return [*learn[:3], Request("forget_class", klass=0 * c + 1), learn[3],
                Request("forget_class", klass=2 * c + 1), learn[4], Request("forget_class", klass=3 * c + 1)]
    if name == "samples":
        return [*learn[:3], Request("forget_samples", fraction=0.1), *learn[3:], Request("forget_samples", fraction=0.1)]
    raise ValueError(f"unknown scenario {name!r}")


SCENARIOS = ("task_aware", "class", "samples")


# --- scores ---------------------------------------------------------------------------------------


def accuracy(probs: np.ndarray, y: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Accuracy (%) per model of (M, N, C) probabilities on the samples flagged ``which``; nan if none."""
    if not which.any():
        return np.full(probs.shape[0], np.nan)
    return 100 * (probs[:, which].argmax(-1) == y[which]).mean(-1)


def entropy(probs: np.ndarray) -> np.ndarray:
    """Prediction entropy of probabilities along the last axis."""
    p = np.clip(probs, 1e-12, 1)
    return -(p * np.log(p)).sum(-1)


def entropy_mia(member: np.ndarray, nonmember: np.ndarray, target: np.ndarray, seed: int = 0) -> float:
    """Membership-inference attack on the entropy feature: a logistic regression trained to tell
    training samples (members) from test samples (non-members), balanced by subsampling, then applied
    to the target (forget) set; returns the share of targets judged members (%)."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    n = min(len(member), len(nonmember))
    if n == 0 or len(target) == 0:
        return float("nan")
    a, b = rng.choice(member, n, replace=False), rng.choice(nonmember, n, replace=False)
    feats = np.concatenate([a, b])[:, None]
    labels = np.r_[np.ones(n), np.zeros(n)]
    clf = LogisticRegression().fit(feats, labels)
    return float(100 * clf.predict(np.asarray(target)[:, None]).mean())


def sample_loss(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Cross-entropy -log p_y of every sample, from (..., N, C) probabilities and (N,) labels."""
    p = np.take_along_axis(probs, np.broadcast_to(y[:, None], (*probs.shape[:-1], 1)), -1)[..., 0]
    return -np.log(np.clip(p, 1e-12, 1))


def loss_threshold_mia(member: np.ndarray, nonmember: np.ndarray, target: np.ndarray) -> float:
    """Loss-threshold membership inference (Yeom et al. 2018), calibrated on held-out data: the
    threshold tau on the per-sample loss that best tells members (retained training samples) from
    non-members (held-out test samples), i.e. maximises TPR - FPR of "loss <= tau => member" (the
    balanced accuracy); returns the share of the target (forget) set with loss <= tau (%).

    Unlike the entropy attack, a confidently *wrong* prediction (low entropy, high loss) reads as
    a non-member."""
    member, nonmember, target = (np.asarray(a, float) for a in (member, nonmember, target))
    if len(member) == 0 or len(nonmember) == 0 or len(target) == 0:
        return float("nan")
    taus = np.unique(np.concatenate([member, nonmember]))
    tpr = np.searchsorted(np.sort(member), taus, side="right") / len(member)
    fpr = np.searchsorted(np.sort(nonmember), taus, side="right") / len(nonmember)
    tau = taus[int(np.argmax(tpr - fpr))]
    return float(100 * (target <= tau).mean())


def backward_transfer(task_acc: np.ndarray, learned_at: dict[int, int], final_tasks: Sequence[int]) -> float:
    """BWT = mean over tasks j still held at the end, except the last learned, of
    acc_j(end) - acc_j(right after learning j); ``task_acc`` is (requests, tasks)."""
    last = max(learned_at, key=learned_at.get)
    js = [j for j in final_tasks if j != last and j in learned_at]
    if not js:
        return float("nan")
    return float(np.mean([task_acc[-1, j] - task_acc[learned_at[j], j] for j in js]))
