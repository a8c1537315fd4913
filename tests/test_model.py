import numpy as np
import pytest

from modelvigil.data import FEATURES, generate
from modelvigil.model import FraudModel


def test_trains_on_first_use_then_loads_the_same_model(tmp_path, trained_model):
    path = tmp_path / "m" / "model.joblib"
    first = FraudModel.load_or_train(path)
    assert path.exists()
    again = FraudModel.load_or_train(path)
    x = generate(200, seed=1)[FEATURES].to_numpy(dtype=float)
    np.testing.assert_array_equal(first.predict(x).probabilities, again.predict(x).probabilities)


def test_labels_and_probabilities_per_row_and_missing_values_are_data(trained_model):
    model, _ = trained_model
    x = generate(50, seed=2)[FEATURES].to_numpy(dtype=float, copy=True)
    x[3, 4] = np.nan
    scores = model.predict(x)
    assert scores.labels.shape == (50,) and scores.probabilities.shape == (50,)
    assert set(scores.labels.tolist()) <= set(model.label_set) == {0, 1}
    assert ((scores.probabilities >= 0) & (scores.probabilities <= 1)).all()
    assert (scores.labels == (scores.probabilities >= 0.5)).all()


def test_wrong_shape_is_refused(trained_model):
    with pytest.raises(ValueError, match="expected shape"):
        trained_model[0].predict(np.zeros((2, 3)))
