import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from modelvigil.data import FEATURES, LABEL, Scenario, generate


def test_columns_in_the_lab_order_then_the_label():
    frame = generate(10, seed=1)
    assert list(frame.columns) == [*FEATURES, LABEL]
    assert FEATURES[0] == "age" and FEATURES[-1] == "customer_score" and len(FEATURES) == 15


def test_same_seed_same_rows_other_seed_other_rows():
    pd.testing.assert_frame_equal(generate(500, seed=3), generate(500, seed=3))
    assert not generate(500, seed=3).equals(generate(500, seed=4))


def test_about_ten_percent_fraud():
    rate = generate(200_000, seed=11)[LABEL].mean()
    assert 0.08 <= rate <= 0.12


def test_label_depends_on_the_features(trained_model):
    model, _ = trained_model
    test = generate(20_000, seed=99)
    scores = model.predict(test[FEATURES].to_numpy(dtype=float))
    # Uniformly random labels (the lab's) would give an AUC of 0.5.
    assert roc_auc_score(test[LABEL], scores.probabilities) > 0.85


def _accuracy(model, frame):
    return model.predict(frame[FEATURES].to_numpy(dtype=float)).labels == frame[LABEL].to_numpy()


def test_covariate_shift_moves_only_the_chosen_features_after_onset():
    base = generate(20_000, seed=5)
    shifted = generate(
        20_000, seed=5, scenario="covariate_shift", onset=0.5, shifted_features=["age", "latitude"]
    )
    before, after = slice(0, 10_000), slice(10_000, None)
    pd.testing.assert_frame_equal(base[FEATURES].iloc[before], shifted[FEATURES].iloc[before])
    for name in FEATURES:
        moved = not np.allclose(base[name].iloc[after], shifted[name].iloc[after])
        assert moved == (name in ("age", "latitude")), name
    assert shifted["age"].iloc[after].mean() > 1.5 * base["age"].iloc[after].mean()


def test_label_ramp_raises_fraud_over_time_and_accuracy_falls(trained_model):
    frame = generate(40_000, seed=6, scenario=Scenario.label_ramp, onset=0.25)
    assert frame[LABEL].iloc[-4000:].mean() > 2 * frame[LABEL].iloc[:10_000].mean()
    hits = _accuracy(trained_model[0], frame)
    assert hits[-4000:].mean() < hits[:10_000].mean() - 0.1


def test_concept_flip_keeps_features_and_breaks_the_rule(trained_model):
    base = generate(40_000, seed=8)
    flipped = generate(40_000, seed=8, scenario="concept_flip", onset=0.5)
    pd.testing.assert_frame_equal(base[FEATURES], flipped[FEATURES])
    hits = _accuracy(trained_model[0], flipped)
    assert hits[25_000:].mean() < hits[:20_000].mean() - 0.08


def test_no_drift_keeps_accuracy_flat(trained_model):
    hits = _accuracy(trained_model[0], generate(40_000, seed=9))
    assert abs(hits[:20_000].mean() - hits[20_000:].mean()) < 0.02


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": -1}, "n must be >= 0"),
        ({"n": 5, "onset": 1.5}, "onset must be within"),
        ({"n": 5, "scenario": "sideways"}, "sideways"),
        ({"n": 5, "magnitude": -1}, "magnitude"),
        ({"n": 5, "scenario": "covariate_shift", "shifted_features": ["salary"]}, "salary"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate(**kwargs)
