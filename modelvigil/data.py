"""Synthetic bank transactions with a learnable fraud label and drift of known kind and onset.

Rows are in time order: row `i` of `n` happens at relative time `i / n`. Drift starts at the row
`int(onset * n)`, so a detector's delay and false alarms can be measured against a known truth.
The lab this project started from drew labels uniformly at random, which makes accuracy
meaningless; here `fraud_trx` follows a logistic function of the features (about 10% positives).
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
import pandas as pd

FEATURES: list[str] = [
    "age",
    "credit_card_balance",
    "bank_account_balance",
    "mortgage_balance",
    "sec_bank_account_balance",
    "savings_account_balance",
    "sec_savings_account_balance",
    "total_est_nworth",
    "primary_loan_balance",
    "secondary_loan_balance",
    "uni_loan_balance",
    "longitude",
    "latitude",
    "transaction_amount",
    "customer_score",
]
LABEL = "fraud_trx"

# Features moved by the covariate_shift scenario unless the caller names others.
DEFAULT_SHIFTED = ("transaction_amount", "credit_card_balance")


class Scenario(StrEnum):
    none = "none"
    covariate_shift = "covariate_shift"
    label_ramp = "label_ramp"
    concept_flip = "concept_flip"


def _features(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    age = np.clip(rng.normal(44, 14, n), 18, 90).round()
    income_scale = rng.lognormal(0.0, 0.5, n)  # one latent wealth factor so balances correlate
    has_mortgage = rng.random(n) < 0.45
    has_second = rng.random(n) < 0.3
    has_uni = (rng.random(n) < 0.25) & (age < 45)
    cols = {
        "age": age,
        "credit_card_balance": rng.gamma(2.0, 1500.0, n) * income_scale,
        "bank_account_balance": rng.lognormal(8.5, 1.0, n) * income_scale,
        "mortgage_balance": np.where(has_mortgage, rng.lognormal(12.0, 0.6, n), 0.0),
        "sec_bank_account_balance": np.where(has_second, rng.lognormal(7.5, 1.0, n), 0.0),
        "savings_account_balance": rng.lognormal(9.0, 1.2, n) * income_scale,
        "sec_savings_account_balance": np.where(has_second, rng.lognormal(8.0, 1.1, n), 0.0),
        "primary_loan_balance": rng.gamma(1.5, 6000.0, n),
        "secondary_loan_balance": np.where(has_second, rng.gamma(1.2, 3000.0, n), 0.0),
        "uni_loan_balance": np.where(has_uni, rng.gamma(2.0, 9000.0, n), 0.0),
        "longitude": rng.uniform(-124.0, -67.0, n),
        "latitude": rng.uniform(25.0, 49.0, n),
        "transaction_amount": rng.lognormal(4.0, 1.1, n),
        "customer_score": np.clip(rng.normal(650, 90, n), 300, 850).round(),
    }
    cols["total_est_nworth"] = (
        cols["bank_account_balance"]
        + cols["savings_account_balance"]
        + cols["sec_savings_account_balance"]
        + cols["sec_bank_account_balance"]
        + rng.lognormal(11.0, 0.8, n) * income_scale
        - cols["credit_card_balance"]
        - cols["primary_loan_balance"]
        - cols["secondary_loan_balance"]
        - cols["uni_loan_balance"]
    )
    return cols


# Reference scales fixed once, so the label rule does not move when the features drift.
_CENTERS = {"transaction_amount": 4.0, "credit_card_balance": 8.0, "customer_score": 650.0, "age": 44.0}


def _fraud_signal(cols: dict[str, np.ndarray]) -> np.ndarray:
    """The part of the fraud log-odds that the features explain (positive = more likely fraud)."""
    amount = (np.log1p(cols["transaction_amount"]) - _CENTERS["transaction_amount"]) / 1.1
    card = (np.log1p(cols["credit_card_balance"]) - _CENTERS["credit_card_balance"]) / 0.9
    score = (cols["customer_score"] - _CENTERS["customer_score"]) / 90.0
    young = (_CENTERS["age"] - cols["age"]) / 14.0
    # Transactions far from the centre of the map are riskier (card used away from home).
    far = np.hypot(cols["longitude"] + 95.5, cols["latitude"] - 37.0) / 15.0
    return 2.2 * amount + 1.0 * card - 1.6 * score + 0.6 * young + 1.2 * far


BASE_INTERCEPT = -5.5  # gives about 10% positives on undrifted data


def generate(
    n: int,
    *,
    seed: int = 0,
    scenario: Scenario | str = Scenario.none,
    onset: float = 0.5,
    magnitude: float = 1.0,
    shifted_features: tuple[str, ...] | list[str] = DEFAULT_SHIFTED,
) -> pd.DataFrame:
    """`n` rows of features (in FEATURES order) plus `fraud_trx`, deterministic for `seed`.

    `magnitude` scales the drift: 1.0 is clearly visible, 0 is none at all.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if not 0.0 <= onset <= 1.0:
        raise ValueError(f"onset must be within [0, 1] (a share of the rows), got {onset}")
    if magnitude < 0:
        raise ValueError(f"magnitude must be >= 0, got {magnitude}")
    scenario = Scenario(scenario)
    unknown = sorted(set(shifted_features) - set(FEATURES))
    if unknown:
        raise ValueError(f"shifted_features has unknown feature(s) {unknown}; known: {FEATURES}")

    rng = np.random.default_rng(seed)
    cols = _features(rng, n)
    start = int(onset * n)
    after = np.arange(n) >= start
    # 0 before onset, rising to 1 at the last row: drift that grows, as real drift tends to.
    ramp = np.where(after, (np.arange(n) - start + 1) / max(n - start, 1), 0.0)

    if scenario is Scenario.covariate_shift:
        for name in shifted_features:
            # Mean up and spread wider; P(label | features) stays the same rule.
            factor = 1.0 + 1.5 * magnitude
            cols[name] = np.where(after, cols[name] * factor + np.std(cols[name]) * magnitude, cols[name])

    signal = _fraud_signal(cols)
    logit = BASE_INTERCEPT + signal
    if scenario is Scenario.label_ramp:
        logit = logit + 4.0 * magnitude * ramp
    elif scenario is Scenario.concept_flip:
        # Features keep their distribution; the rule linking them to fraud turns around (and
        # fraud becomes a little more common: at a 10% base rate a pure flip moves accuracy little).
        flipped = BASE_INTERCEPT + 3.0 - signal
        weight = np.where(after, min(magnitude, 1.0), 0.0)
        logit = (1 - weight) * logit + weight * flipped

    label = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)
    frame = pd.DataFrame({name: cols[name] for name in FEATURES})
    frame[LABEL] = label
    return frame
