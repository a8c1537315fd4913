"""Classification quality per window, from one confusion count per window: accuracy with its
Wilson interval, precision/recall/F1 (of the positive class for a binary model, macro-averaged
otherwise), the predicted class mix and its drift against the reference's mix, and the predicted
positive rate with its interval. Classes are compared as the values they are."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pandas as pd

from modelvigil.analysis.alerts import Guard, Rule
from modelvigil.analysis.calculators.base import JUDGED, Block, Calculator, Context
from modelvigil.analysis.config import AlertKind
from modelvigil.analysis.drift import NOISE_ALPHA, CategoricalReference, categorical_counts_drift
from modelvigil.analysis.model_schema import class_key, sort_key
from modelvigil.analysis.performance import wilson_interval

SHOWN_CLASSES = 20  # more classes than this: the mix and the confusion matrix show the most frequent
OTHER = "(other)"
NO_PREDICTION = "(no prediction)"  # a labelled call that came back without one: a miss
PER_CLASS_COLUMNS = ["class", "labels", "predicted", "precision", "recall", "f1"]


def class_keys(values: pd.Series) -> pd.Series:
    """Each value as its class (`class_key`: 1.0 as 1), kept as objects: a float column of whole
    numbers would otherwise be inferred back into floats."""
    # The dtypes and the index are what numpy and pandas would give anyway (a float column's
    # values are floats, an array filled with None holds objects; every frame here is indexed
    # 0..n-1), said for the reader: the lines marked are equivalent under mutation.
    if pd.api.types.is_float_dtype(values):
        floats = values.to_numpy(dtype=float)  # pragma: no mutate
        finite = np.isfinite(floats)
        if np.all(np.mod(floats[finite], 1) == 0):
            out = np.full(floats.size, None, dtype=object)  # pragma: no mutate
            out[finite] = floats[finite].astype(np.int64).astype(object)
            return pd.Series(out, index=values.index, dtype=object)  # pragma: no mutate
        return values
    if pd.api.types.is_integer_dtype(values) or pd.api.types.is_bool_dtype(values):
        return values
    objects = values.to_numpy(dtype=object)  # pragma: no mutate
    keys = [None if v is None or v != v else class_key(v) for v in objects]
    return pd.Series(keys, index=values.index, dtype=object)  # pragma: no mutate


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def rates(confusion: Counter, classes: list[object]) -> dict[object, tuple[float, float, float]]:
    """Per class: precision, recall, F1 (0 where undefined), from (actual, predicted) counts."""
    predicted_total: Counter = Counter()
    actual_total: Counter = Counter()
    for (a, p), n in confusion.items():
        predicted_total[p] += n
        actual_total[a] += n
    out = {}
    for c in classes:
        tp = confusion.get((c, c), 0)
        predicted, actual = predicted_total[c], actual_total[c]
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        out[c] = (precision, recall, f1)
    return out


class Classification(Calculator):
    rules = (
        # Confidently below: the whole 95% interval under the floor, so noise in a small window does
        # not page anyone (the point estimate alone would, about 1 window in 100).
        Rule(AlertKind.accuracy, "windows", "accuracy", "min_accuracy", "<",
             "window {window}: accuracy {value:.3f} below {threshold} ({n_labelled:.0f} labels)",
             compared="accuracy_high"),
        Rule(AlertKind.drift, "windows", "prediction_js", "max_prediction_js", ">",
             "window {window}: prediction mix drifted (JS {value:.3f} > {threshold})", subject="predictions",
             guards=(JUDGED, Guard("prediction_pvalue", "<", NOISE_ALPHA)), fitted=True),
    )  # fmt: skip

    def __init__(self) -> None:
        self.confusion: dict[int, Counter] = {}
        self.mix: dict[int, Counter] = {}
        self.positives: Counter = Counter()
        self.rows: Counter = Counter()
        # Set by fit, or never read.
        self.reference_mix: CategoricalReference | None = None  # pragma: no mutate

    def fit(self, reference: pd.DataFrame, context: Context) -> None:
        super().fit(reference, context)  # pragma: no mutate (the base keeps only the context)
        if not reference.empty:
            counts = class_keys(reference["prediction"]).value_counts()
            if not counts.empty:
                self.reference_mix = CategoricalReference(list(counts.index), counts.to_numpy())

    def fold(self, block: Block) -> None:
        records = block.records
        prediction = class_keys(records["prediction"])
        label = class_keys(records["label"])
        labelled = block.labelled
        positive = self.context.positive
        for key, rows in block.groups:
            p = prediction.iloc[rows]
            self.rows[key] += len(rows)
            self.mix.setdefault(key, Counter()).update(p.value_counts(dropna=True).to_dict())
            if positive is not None:
                self.positives[key] += int((p == positive).sum())
            mine = rows[labelled[rows]]
            if mine.size:
                # (actual, predicted) pairs, in that order whatever the columns are called; a
                # labelled call without a prediction is a pair too (a miss), and dropna=None
                # would keep it as False does.
                actual, predicted = label.iloc[mine].to_numpy(), prediction.iloc[mine].to_numpy()
                pairs = pd.DataFrame({"a": actual, "p": predicted})  # pragma: no mutate
                counted = pairs.value_counts(dropna=False)  # pragma: no mutate
                self.confusion.setdefault(key, Counter()).update(Counter(dict(counted.items())))

    def classes(self) -> list[object]:
        seen = {c for counts in self.confusion.values() for pair in counts for c in pair}
        seen |= {c for counts in self.mix.values() for c in counts}
        seen |= set(self.context.classes)
        return sorted((c for c in seen if not _missing(c)), key=sort_key)

    def columns(self, keys: list[int]) -> pd.DataFrame:
        min_labels = max(self.context.config.thresholds.min_labels, 1)
        positive = self.context.positive
        classes = self.classes()
        mix_over_range: Counter = Counter()
        for key in keys:
            mix_over_range.update(self.mix[key])  # every window folded has its mix, empty or not
        predicted_classes = self._shown(mix_over_range)
        rows = []
        for key in keys:
            confusion = self.confusion.get(key, Counter())
            n = sum(confusion.values())
            hits = sum(count for (a, p), count in confusion.items() if a == p)
            enough = n >= min_labels
            k, m = np.array([hits], dtype=float), np.array([n], dtype=float)  # pragma: no mutate
            low, high = wilson_interval(k, m)
            if positive is not None:
                precision, recall, f1 = rates(confusion, [positive])[positive]
            else:
                per_class = rates(confusion, classes)
                precision, recall, f1 = (float(np.mean([r[i] for r in per_class.values()])) for i in range(3))
            row: dict[str, object] = {
                "accuracy": hits / n if enough else math.nan,
                "accuracy_low": float(low[0]) if enough else math.nan,
                "accuracy_high": float(high[0]) if enough else math.nan,
                "precision": precision if enough else math.nan,
                "recall": recall if enough else math.nan,
                "f1": f1 if enough else math.nan,
            }
            mix = self.mix[key]
            predicted = sum(mix.values())  # rows with a prediction: the mix's whole
            for c in predicted_classes:
                if c == OTHER:
                    count = predicted - sum(mix.get(k, 0) for k in predicted_classes)
                else:
                    count = mix.get(c, 0)
                row[f"share_{c}"] = count / predicted if predicted else math.nan
            if positive is not None:
                rows_here = self.rows[key]
                k = np.array([self.positives[key]], dtype=float)  # pragma: no mutate
                m = np.array([rows_here], dtype=float)  # pragma: no mutate
                pos_low, pos_high = wilson_interval(k, m)
                row["positive_rate"] = self.positives[key] / rows_here
                row["positive_rate_low"], row["positive_rate_high"] = float(pos_low[0]), float(pos_high[0])
            if self.reference_mix is not None:
                # Counts as floats or ints: the same shares.
                counts = pd.Series(dict(mix.most_common()), dtype=float)  # pragma: no mutate
                drift = categorical_counts_drift(self.reference_mix, counts)
                row["prediction_js"], row["prediction_pvalue"] = drift["js"], drift["chi2_pvalue"]
            rows.append(row)
        return pd.DataFrame(rows)

    @staticmethod
    def _shown(counts: Counter) -> list[object]:
        """Every class, or the `SHOWN_CLASSES` most frequent and OTHER for the rest."""
        if len(counts) <= SHOWN_CLASSES:
            return sorted(counts, key=sort_key)
        return [*sorted((c for c, _ in counts.most_common(SHOWN_CLASSES)), key=sort_key), OTHER]

    def total_confusion(self) -> Counter:
        total: Counter = Counter()
        for counts in self.confusion.values():
            total.update(counts)
        return total

    def confusion_table(self) -> pd.DataFrame:
        total = self.total_confusion()
        if not total:
            return pd.DataFrame()
        actual_counts: Counter = Counter()
        predicted_counts: Counter = Counter()
        for (a, p), n in total.items():
            actual_counts[a] += n
            predicted_counts[p] += n
        actual, predicted = self._shown(actual_counts), self._shown(predicted_counts)
        predicted = [NO_PREDICTION if _missing(p) else p for p in predicted]
        grid_counts: Counter = Counter()
        for (a, p), n in total.items():
            shown = NO_PREDICTION if _missing(p) else p if p in predicted else OTHER
            grid_counts[(a if a in actual else OTHER, shown)] += n
        grid = pd.DataFrame(
            [[grid_counts.get((a, p), 0) for p in predicted] for a in actual],
            index=pd.Index(actual, name="actual"),
            columns=pd.Index(predicted, name="predicted"),
        )
        return grid.astype(np.int64)

    def per_class(self) -> pd.DataFrame:
        """Over the whole range: per class its labels, predictions, precision, recall and F1."""
        total = self.total_confusion()
        if not total:
            return pd.DataFrame(columns=PER_CLASS_COLUMNS)
        classes = sorted({c for pair in total for c in pair if not _missing(c)}, key=sort_key)
        per_class = rates(total, classes)
        labels: Counter = Counter()
        predicted: Counter = Counter()
        for (a, p), n in total.items():
            labels[a] += n
            predicted[p] += n
        return pd.DataFrame(
            [
                {
                    "class": c,
                    "labels": labels[c],
                    "predicted": predicted[c],
                    "precision": per_class[c][0],
                    "recall": per_class[c][1],
                    "f1": per_class[c][2],
                }
                for c in classes
            ]
        )

    def overall(self) -> dict[str, float | int | None]:
        total = self.total_confusion()
        n = sum(total.values())
        hits = sum(count for (a, p), count in total.items() if a == p)
        return {"accuracy": hits / n if n else None}
