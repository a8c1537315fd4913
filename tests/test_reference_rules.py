"""The reference-relative signals on small fixed data: each fires where it must and stays quiet
where it must, and the CUSUM's limit keeps the false-alarm rate it states."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from modelvigil.analysis.config import MonitoringConfig
from modelvigil.analysis.engine import analyse, prepare_records
from modelvigil.analysis.performance_drift import PerformanceReference, cusum_limit
from modelvigil.protocol import LABEL_KEY

REFERENCE = 1_000
WINDOW = 500


def frame(correct: np.ndarray, probability: np.ndarray | None = None, seed: int = 0) -> pd.DataFrame:
    """Records in the store's shape whose predictions are right where `correct` says."""
    rng = np.random.default_rng(seed)
    n = len(correct)
    prediction = rng.integers(0, 2, n)
    if probability is None:
        probability = np.where(prediction == 1, 0.9, 0.1)
    start = 1_700_000_000_000 + np.arange(n, dtype=np.int64) * 10
    return pd.DataFrame(
        {
            "prediction_uuid": [f"u{i}" for i in range(n)],
            "row": np.zeros(n, dtype=np.int64),
            "start_ms": start,
            "end_ms": start + 2,
            "prediction": prediction,
            "probability": probability,
            LABEL_KEY: np.where(correct, prediction, 1 - prediction).astype(float),
            "input_data.x": rng.normal(size=n),
        }
    )


def exact(n: int, hits: int, seed: int) -> np.ndarray:
    """`hits` correct of `n`, spread at random: exact rates, not draws."""
    out = np.zeros(n, dtype=bool)
    out[np.random.default_rng(seed).choice(n, hits, replace=False)] = True
    return out


def alerts_of(records: pd.DataFrame, metric: str, reference: int = REFERENCE) -> list[int]:
    result = analyse(
        records, pd.DataFrame(), MonitoringConfig(window_size=WINDOW), reference=records.iloc[:reference]
    )
    return sorted(a.window for a in result.alerts if a.metric == metric)


def test_an_accuracy_drop_below_the_reference_fires_above_the_floor():
    # 0.93 on the reference, then a window at 0.86: above the 0.85 floor, far below the reference.
    correct = np.concatenate([exact(REFERENCE, 930, 1), exact(WINDOW, 465, 2), exact(WINDOW, 430, 3)])
    assert alerts_of(frame(correct), "accuracy_drop") == [3]
    assert alerts_of(frame(correct), "accuracy") == []  # the floor alone never saw it


def test_a_drop_within_sampling_noise_or_too_small_to_matter_is_quiet():
    noise = np.concatenate([exact(REFERENCE, 930, 1), exact(WINDOW, 455, 2), exact(WINDOW, 457, 3)])
    assert alerts_of(frame(noise), "accuracy_drop") == []  # 0.91 against 0.93: p ~ 0.09


def test_errors_that_creep_up_are_caught_by_the_cusum_before_any_window_alone():
    # A reference large enough that its own error does not blunt the CUSUM (its base rate is the
    # reference's upper bound).
    big = 5_000
    steps = [exact(big, 4_650, 1)] + [exact(WINDOW, 465, 2 + i) for i in range(2)]
    # 0.90 for ten windows: no window alone is sure of a drop from 0.93 (p ~ 0.005), together they are.
    steps += [exact(WINDOW, 450, 10 + i) for i in range(10)]
    correct = np.concatenate(steps)
    cusum = alerts_of(frame(correct), "accuracy_cusum", big)
    drop = alerts_of(frame(correct), "accuracy_drop", big)
    assert cusum and (not drop or cusum[0] < drop[0]), (cusum, drop)
    steady = np.concatenate([exact(big, 4_650, 1)] + [exact(WINDOW, 465, 20 + i) for i in range(6)])
    assert alerts_of(frame(steady), "accuracy_cusum", big) == []


@pytest.mark.slow  # 30 seeds: left out of `./run mutation`, which runs the fast tests per mutant
def test_the_cusum_says_since_when_and_keeps_quiet_traffic_quiet_for_a_small_reference():
    # Quiet: 30 seeds, a 500-label reference drawn at the model's own error rate, 20 windows each.
    rng = np.random.default_rng(11)
    alarms = 0
    for seed in range(30):
        correct = rng.random(500 + 20 * WINDOW) < 0.93
        alarms += len(alerts_of(frame(correct, seed=seed), "accuracy_cusum", 500))
    assert alarms <= 6  # at most 1 per 100 quiet windows (600 of them)
    # A drift after window 10: the alert says in which window the errors began to add up.
    correct = np.concatenate([rng.random(500 + 9 * WINDOW) < 0.93, rng.random(6 * WINDOW) < 0.85])
    result = analyse(
        frame(correct),
        pd.DataFrame(),
        MonitoringConfig(window_size=WINDOW),
        reference=frame(correct).iloc[:500],
    )
    (first, *_) = [a for a in result.alerts if a.metric == "accuracy_cusum"]
    since = int(result.windows.loc[first.window, "cusum_since"])
    assert 9 <= since <= first.window and f"since window {since}" in first.message


def test_a_reference_too_small_for_the_cusum_holds_it_back_and_says_so():
    correct = (
        np.random.default_rng(12).random(300 + 6 * WINDOW)
        < np.r_[np.full(300, 0.95), np.full(6 * WINDOW, 0.8)]
    )
    records = frame(correct)
    result = analyse(
        records, pd.DataFrame(), MonitoringConfig(window_size=WINDOW), reference=records.iloc[:300]
    )
    assert not [a for a in result.alerts if a.metric == "accuracy_cusum"]
    assert any("too few for the accuracy CUSUM" in n for n in result.notes)
    assert [a for a in result.alerts if a.metric == "accuracy_drop"]  # the drop test still judges


def test_the_cusum_equals_its_recursion_and_its_limit_keeps_its_run_length():
    from modelvigil.analysis import performance_drift, sequential

    rng = np.random.default_rng(5)
    errors = rng.random(3_000) < 0.1
    vectorised = sequential.cusum(performance_drift.bernoulli_steps(errors, 0.1, 1.5))
    s, looped = 0.0, []
    p0, p1 = 0.1, 0.15
    for e in errors:
        s = max(0.0, s + (np.log(p1 / p0) if e else np.log((1 - p1) / (1 - p0))))
        looped.append(s)
    assert np.allclose(vectorised, looped)

    # In control, the first passage of the limit comes after about the run length it was set for.
    target = 2_000
    limit = cusum_limit(0.1, 1.5, target)
    streams = rng.random((300, 20_000)) < 0.1
    runs = []
    for stream in streams:
        over = np.flatnonzero(sequential.cusum(performance_drift.bernoulli_steps(stream, 0.1, 1.5)) > limit)
        runs.append(over[0] + 1 if over.size else stream.size)
    assert 0.6 * target < np.mean(runs) < 1.6 * target, np.mean(runs)
    assert cusum_limit(0.1, 1.5, 20 * target) > limit  # a rarer false alarm needs a higher limit


def test_estimated_accuracy_follows_confidence_and_cannot_see_a_concept_flip():
    rng = np.random.default_rng(7)

    def calibrated(p: np.ndarray, seed: int) -> np.ndarray:
        confident = np.maximum(p, 1 - p)
        return np.random.default_rng(seed).random(len(p)) < confident

    sure = rng.uniform(0.9, 1.0, REFERENCE + 2 * WINDOW)
    unsure = rng.uniform(
        0.6, 0.75, 2 * WINDOW
    )  # covariate shift: the model is less sure, and right less often
    p = np.concatenate([sure, unsure])
    records = frame(calibrated(p, 1), probability=p)
    result = analyse(
        records, pd.DataFrame(), MonitoringConfig(window_size=WINDOW), reference=records.iloc[:REFERENCE]
    )
    w = result.windows.set_index("window")
    assert abs(w.loc[4, "estimated_accuracy"] - w.loc[4, "accuracy"]) < 0.05
    assert w.loc[2, "estimated_accuracy"] > 0.93 and w.loc[4, "estimated_accuracy"] < 0.72
    flagged = sorted(a.window for a in result.alerts if a.metric == "estimated_accuracy")
    assert flagged == [4, 5]
    drift = sorted(a.window for a in result.alerts if a.metric == "probability_ks")
    assert drift == [4, 5]

    flip = frame(
        np.concatenate([calibrated(sure[:REFERENCE], 2), ~calibrated(sure[REFERENCE:], 3)]), probability=sure
    )
    flipped = analyse(
        flip, pd.DataFrame(), MonitoringConfig(window_size=WINDOW), reference=flip.iloc[:REFERENCE]
    )
    assert not [a for a in flipped.alerts if a.metric == "estimated_accuracy"]  # as confident as before
    assert [a for a in flipped.alerts if a.metric == "accuracy_drop"]  # the labels see it


def test_each_alert_shows_its_value_beside_the_limit_of_the_same_quantity(tmp_path):
    # Tests on a p-value report what a person compares: the window's accuracy beside the
    # reference's, a p-value beside its level; never an accuracy drop beside 0.001.
    rng = np.random.default_rng(7)
    p = np.concatenate([rng.uniform(0.9, 1.0, REFERENCE + 2 * WINDOW), rng.uniform(0.6, 0.75, 2 * WINDOW)])
    correct = np.random.default_rng(1).random(len(p)) < np.maximum(p, 1 - p)
    records = frame(correct, probability=p)
    config = MonitoringConfig(window_size=WINDOW)
    result = analyse(records, pd.DataFrame(), config, reference=records.iloc[:REFERENCE])
    w = result.windows.set_index("window")
    shown = {
        "accuracy_drop": ("accuracy", "reference_accuracy"),
        "estimated_accuracy": ("estimated_accuracy", "reference_accuracy"),
        "probability_ks": ("probability_pvalue", None),
    }
    fired = {a.metric for a in result.alerts}
    assert set(shown) <= fired, fired
    for alert in (a for a in result.alerts if a.metric in shown):
        value, limit = shown[alert.metric]
        assert alert.value == pytest.approx(w.loc[alert.window, value])
        expected = config.thresholds.reference_alpha if limit is None else w.loc[alert.window, limit]
        assert alert.threshold == pytest.approx(expected)
        assert alert.value < alert.threshold  # each fell below its own kind of limit
    (drop, *_) = [a for a in result.alerts if a.metric == "accuracy_drop"]
    assert f"accuracy {drop.value:.3f}, {w.loc[drop.window, 'accuracy_drop']:.3f} below" in drop.message
    assert f"the reference's {drop.threshold:.3f}" in drop.message
    # In the report's alert rows, a p-value is shown as one (not rounded to 0.000) beside its level.
    from modelvigil.analysis.report import write_report

    (ks, *_) = [a for a in result.alerts if a.metric == "probability_ks"]
    result.alerts.append(ks.model_copy(update={"value": 1.2e-9}))  # KS p-values here underflow to 0
    page = write_report(result, {}, tmp_path, {"model_name": "m"}).read_text()
    assert "<td>1.2e-09</td><td>0.001</td>" in page
    assert f"<td>{drop.value:.3f}</td><td>{drop.threshold:.3f}</td>" in page


def test_a_reference_without_enough_labels_sets_no_level():
    records = frame(exact(REFERENCE + WINDOW, 1_400, 1))
    records.loc[: REFERENCE - 1, LABEL_KEY] = np.nan
    result = analyse(
        records, pd.DataFrame(), MonitoringConfig(window_size=WINDOW), reference=records.iloc[:REFERENCE]
    )
    assert "accuracy_drop" not in result.windows
    assert any("too few labels" in note for note in result.notes)
    assert PerformanceReference.fit(prepare_records(records.iloc[:50])[0]) is None


@pytest.mark.parametrize(
    "metric", ["accuracy_drop", "accuracy_cusum", "estimated_accuracy", "probability_ks"]
)
def test_quiet_traffic_raises_no_reference_relative_alert(metric):
    p = np.random.default_rng(3).uniform(0.85, 1.0, REFERENCE + 8 * WINDOW)
    correct = np.random.default_rng(4).random(len(p)) < p
    assert alerts_of(frame(correct, probability=p), metric) == []


def test_the_predicted_positive_rate_comes_with_its_interval():
    records = frame(exact(REFERENCE + 2 * WINDOW, 1_800, 1))
    result = analyse(
        records, pd.DataFrame(), MonitoringConfig(window_size=WINDOW), reference=records.iloc[:REFERENCE]
    )
    w = result.windows
    expected = (records["prediction"] == 1).groupby(np.arange(len(records)) // WINDOW).mean()
    assert np.allclose(w["positive_rate"], expected)
    assert (
        (w["positive_rate_low"] < w["positive_rate"]) & (w["positive_rate"] < w["positive_rate_high"])
    ).all()
    assert (w["positive_rate_high"] - w["positive_rate_low"]).between(0.05, 0.12).all()  # +-4 points at n=500


def _cusum_written_out(
    errors: np.ndarray, windows: np.ndarray, accuracy: float, n_reference: int, shift: float
) -> tuple[dict, dict]:
    """The errors' CUSUM, one labelled prediction at a time: per window its highest level and the
    window where the excursion that reached it began (after the last time it stood at 0)."""
    error = 1 - accuracy
    base = min(error + 1.645 * np.sqrt(max(error * (1 - error), 1 / n_reference) / n_reference), 0.5)
    p0 = min(max(base, 1e-3), 0.5)
    p1 = min(p0 * shift, 0.999)
    level, began, top, since = 0.0, None, {}, {}
    for wrong, w in zip(errors, windows, strict=True):
        level = max(0.0, level + (np.log(p1 / p0) if wrong else np.log((1 - p1) / (1 - p0))))
        if level == 0:
            began = None
        elif began is None:
            began = w
        if w not in top or level > top[w]:
            top[w], since[w] = level, began if began is not None else w
    return top, since


@pytest.mark.parametrize("block_rows", [None, 7, 97])
def test_every_reference_relative_column_written_out_and_the_same_over_blocks(block_rows):
    from scipy.stats import ks_2samp

    from modelvigil.analysis.engine import analyse_blocks
    from modelvigil.analysis.performance_drift import cusum_limit

    rng = np.random.default_rng(31)
    n, size, reference_rows = 4_000, 250, 1_000
    p = np.clip(np.r_[rng.uniform(0.85, 1.0, 2_500), rng.uniform(0.6, 0.8, 1_500)], 0, 1)
    correct = rng.random(n) < np.r_[np.full(2_500, 0.93), np.full(1_500, 0.8)]
    records = frame(correct, probability=np.where(rng.random(n) < 0.5, p, 1 - p), seed=5)
    records.loc[rng.random(n) < 0.3, LABEL_KEY] = np.nan  # 70% of the labels arrived
    records.loc[3_000:3_249, LABEL_KEY] = np.nan  # a window without any
    config = MonitoringConfig(window_size=size)
    reference = records.iloc[:reference_rows]
    if block_rows is None:
        result = analyse(records, pd.DataFrame(), config, reference=reference)
    else:
        blocks = [records.iloc[i : i + block_rows] for i in range(0, n, block_rows)]
        span = (int(records["start_ms"].min()), int(records["end_ms"].max()))
        result = analyse_blocks(lambda: blocks, pd.DataFrame(), config, span, lambda: [reference])
    w = result.windows
    window = np.arange(n) // size
    labelled = records[LABEL_KEY].notna().to_numpy()
    hit = (records["prediction"] == records[LABEL_KEY]).to_numpy()
    ref_n = int(labelled[:reference_rows].sum())
    ref_acc = hit[:reference_rows][labelled[:reference_rows]].mean()
    assert w["reference_accuracy"].tolist() == pytest.approx([ref_acc] * (n // size))

    t = config.thresholds
    top, since = _cusum_written_out(~hit[labelled], window[labelled], ref_acc, ref_n, t.cusum_shift)
    per_window = np.median(np.bincount(window[labelled], minlength=n // size))
    base = min((1 - ref_acc) + 1.645 * np.sqrt((1 - ref_acc) * ref_acc / ref_n), 0.5)
    limit = cusum_limit(base, t.cusum_shift, per_window * t.cusum_quiet_windows)
    for k in range(n // size):
        row, mine = w.iloc[k], (window == k) & labelled
        if not mine.any():  # no label: nothing to hold against the reference
            assert np.isnan(row["accuracy_cusum"]) and np.isnan(row["cusum_since"])
            assert np.isnan(row["accuracy_drop"]) and np.isnan(row["accuracy_drop_pvalue"])
        else:
            acc, m = hit[mine].mean(), int(mine.sum())
            pooled = (acc * m + ref_acc * ref_n) / (m + ref_n)
            z = (acc - ref_acc) / np.sqrt(pooled * (1 - pooled) * (1 / m + 1 / ref_n))
            assert row["accuracy_drop"] == pytest.approx(ref_acc - acc)
            assert row["accuracy_drop_pvalue"] == pytest.approx(stats.norm.cdf(z))
            assert row["accuracy_cusum"] == pytest.approx(top[k]) and row["cusum_since"] == since[k]
        assert row["cusum_limit"] == pytest.approx(limit)
        probs = records["probability"].to_numpy()
        d = ks_2samp(probs[window == k], probs[:reference_rows]).statistic
        assert row["probability_ks"] == pytest.approx(d, abs=0.02)  # binned, not exact
        assert row["estimated_drop"] == pytest.approx(ref_acc - row["estimated_accuracy"])
    assert (w["accuracy_cusum"].iloc[12:] > limit).any()  # the errors did add up after the drop


def test_what_the_reference_allows_is_said_in_its_own_words():
    few = frame(exact(REFERENCE + WINDOW, 1_400, 1))
    few.loc[: REFERENCE - 1, LABEL_KEY] = np.nan
    few.loc[:9, LABEL_KEY] = few.loc[:9, "prediction"]  # 10 labels: too few for any level
    held = analyse(few, pd.DataFrame(), MonitoringConfig(window_size=WINDOW), reference=few.iloc[:REFERENCE])
    assert "the reference holds too few labels: accuracy is held against the floor only" in held.notes

    # Exactly the CUSUM's least reference (500 labels): judged, not held back; 499: held back.
    for labels, is_held in ((500, False), (499, True)):
        records = frame(exact(REFERENCE + WINDOW, 1_400, 2), probability=np.full(REFERENCE + WINDOW, 0.9))
        records.loc[labels : REFERENCE - 1, LABEL_KEY] = np.nan
        a = analyse(
            records, pd.DataFrame(), MonitoringConfig(window_size=WINDOW), reference=records.iloc[:REFERENCE]
        )
        assert bool(a.windows["cusum_limit"].isna().all()) is is_held, labels
        assert any("too few for the accuracy CUSUM" in note for note in a.notes) is is_held

    # A binary model without probabilities says what it cannot estimate; nothing about classes.
    bare = frame(exact(REFERENCE + WINDOW, 1_400, 3), probability=np.full(REFERENCE + WINDOW, np.nan))
    b = analyse(bare, pd.DataFrame(), MonitoringConfig(window_size=WINDOW), reference=bare.iloc[:REFERENCE])
    assert "no predicted probabilities recorded: accuracy is not estimated before labels arrive" in b.notes
    assert not any("multi-class" in note for note in b.notes)
    assert b.windows["estimated_accuracy"].isna().all()


def test_a_multiclass_model_is_not_estimated_before_labels_even_with_probabilities():
    rng = np.random.default_rng(8)
    n = REFERENCE + 2 * WINDOW
    truth = rng.integers(0, 3, n)
    records = frame(np.ones(n, dtype=bool), probability=rng.uniform(0.4, 1.0, n))
    records["prediction"] = np.where(rng.random(n) < 0.85, truth, (truth + 1) % 3)
    records[LABEL_KEY] = truth.astype(float)
    a = analyse(
        records, pd.DataFrame(), MonitoringConfig(window_size=WINDOW), reference=records.iloc[:REFERENCE]
    )
    assert str(a.task) == "multiclass"
    assert (
        "a multi-class model: accuracy is not estimated before labels (confidence-based "
        "estimation is for binary models here)"
    ) in a.notes
    assert not any("no predicted probabilities" in note for note in a.notes)
    assert a.windows["estimated_accuracy"].isna().all()


def test_probabilities_recorded_as_text_are_missing_ones():
    records = frame(exact(REFERENCE + WINDOW, 1_400, 4), probability=np.full(REFERENCE + WINDOW, 0.9))
    records["probability"] = records["probability"].astype(object)
    records.loc[REFERENCE:, "probability"] = "n/a"  # the last window's: not numbers
    a = analyse(
        records, pd.DataFrame(), MonitoringConfig(window_size=WINDOW), reference=records.iloc[:REFERENCE]
    )
    assert a.windows["estimated_accuracy"].iloc[:2].notna().all() and np.isnan(
        a.windows["estimated_accuracy"].iloc[2]
    )
