"""The fraud classifier served by the embedded service: trained once on a reference sample, persisted.

HistGradientBoosting because it learns the non-linear label rule well and takes missing values
as they come (a null feature in a request is data, not a crash).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier

from modelvigil.data import FEATURES, LABEL, generate

REFERENCE_ROWS = 50_000
REFERENCE_SEED = 20_240_501  # fixed: the reference sample is part of the model's identity


@dataclass(frozen=True)
class Scores:
    labels: np.ndarray  # int64, one per row
    probabilities: np.ndarray  # float64 in [0, 1]: probability of fraud


class FraudModel:
    def __init__(self, estimator: HistGradientBoostingClassifier) -> None:
        self._estimator = estimator

    @property
    def label_set(self) -> list[int]:
        return [int(c) for c in self._estimator.classes_]

    @classmethod
    def train(cls, reference: pd.DataFrame | None = None, seed: int | None = None) -> FraudModel:
        """Trained on `reference`, else on a reference sample drawn with `seed` (a model's own
        seed gives it its own sample and its own trees: models of one service behave differently)."""
        if reference is None:
            reference = generate(REFERENCE_ROWS, seed=REFERENCE_SEED if seed is None else seed)
        estimator = HistGradientBoostingClassifier(max_iter=200, random_state=0 if seed is None else seed)
        estimator.fit(reference[FEATURES].to_numpy(dtype=float), reference[LABEL].to_numpy())
        return cls(estimator)

    def predict(self, features: np.ndarray) -> Scores:
        """`features`: float array of shape (rows, len(FEATURES)), columns in FEATURES order."""
        if features.ndim != 2 or features.shape[1] != len(FEATURES):
            raise ValueError(f"expected shape (rows, {len(FEATURES)}), got {features.shape}")
        proba = self._estimator.predict_proba(features)
        positive = proba[:, list(self._estimator.classes_).index(1)]
        labels = self._estimator.classes_[np.argmax(proba, axis=1)].astype(np.int64)
        return Scores(labels=labels, probabilities=positive.astype(np.float64))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename: a concurrent reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        joblib.dump(self._estimator, tmp)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> FraudModel:
        return cls(joblib.load(path))

    @classmethod
    def load_or_train(cls, path: Path, seed: int | None = None) -> FraudModel:
        if path.exists():
            return cls.load(path)
        model = cls.train(seed=seed)
        model.save(path)
        return model
