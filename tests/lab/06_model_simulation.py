# Written as the lab's 06_model_simulation.py is, for a CML session: it knows nothing of modelvigil.
import os
import random
import time

import numpy as np
import pandas as pd

from src.api import ApiUtility

try:
    import cml.utils_v1 as utils

    cdsw = utils._emulate_cdsw()
except ImportError:
    import cdsw

USERNAME = os.environ["PROJECT_OWNER"]
modelName = "FraudCLF-" + USERNAME
N_REQUESTS = int(os.environ.get("LAB_REQUESTS", "1000"))

COLUMNS = [
    "age", "credit_card_balance", "bank_account_balance", "mortgage_balance", "sec_bank_account_balance",
    "savings_account_balance", "sec_savings_account_balance", "total_est_nworth", "primary_loan_balance",
    "secondary_loan_balance", "uni_loan_balance", "longitude", "latitude", "transaction_amount",
    "customer_score",
]  # fmt: skip


class BankDataGen:
    """Synthetic transactions, as the lab's data generator makes them."""

    def __init__(self, seed=42):
        self.rng = np.random.default_rng(seed)

    def dataGen(self, n):
        rng = self.rng
        df = pd.DataFrame(
            {
                "age": rng.integers(18, 90, n).astype(float),
                "credit_card_balance": rng.uniform(0, 20000, n),
                "bank_account_balance": rng.uniform(0, 100000, n),
                "mortgage_balance": rng.uniform(0, 500000, n),
                "sec_bank_account_balance": rng.uniform(0, 100000, n),
                "savings_account_balance": rng.uniform(0, 200000, n),
                "sec_savings_account_balance": rng.uniform(0, 200000, n),
                "total_est_nworth": rng.uniform(0, 2000000, n),
                "primary_loan_balance": rng.uniform(0, 50000, n),
                "secondary_loan_balance": rng.uniform(0, 50000, n),
                "uni_loan_balance": rng.uniform(0, 50000, n),
                "longitude": rng.uniform(-180, 180, n),
                "latitude": rng.uniform(-90, 90, n),
                "transaction_amount": rng.uniform(0, 5000, n),
                "customer_score": rng.uniform(0, 1, n),
            }
        )
        df["fraud_trx"] = (df["transaction_amount"] > 4000).astype(int)
        return df


apiUtil = ApiUtility()
Model_AccessKey = apiUtil.get_latest_deployment_details(model_name=modelName)["model_access_key"]
Deployment_CRN = apiUtil.get_latest_deployment_details(model_name=modelName)["latest_deployment_crn"]

dg = BankDataGen()
df = dg.dataGen(N_REQUESTS)


def submitRequest(df, model_access_key):
    """Score each row with one call; keep each prediction's uuid beside its ground truth."""
    response_labels_sample = []
    percent_counter = 0
    percent_max = len(df)
    for record in df.to_dict(orient="records"):
        percent_counter += 1
        ground_truth = record.pop("fraud_trx")
        data = {"dataframe_split": {"columns": COLUMNS, "data": [[record[c] for c in COLUMNS]]}}
        response = cdsw.call_model(model_access_key, data)
        response_labels_sample.append(
            {
                "uuid": response["response"]["uuid"],
                "final_label": int(ground_truth),
                "response_label": response["response"]["prediction"],
                "timestamp_ms": int(round(time.time() * 1000)),
            }
        )
        if percent_counter % 250 == 0:
            print("Added {} records".format(percent_counter)) if (percent_counter % 50 == 0) else None
    return response_labels_sample


start_timestamp_ms = int(round(time.time() * 1000))
response_labels_sample = submitRequest(df, Model_AccessKey)

# Ground truth arrives later, one call per prediction; an accuracy aggregate every 100.
for index, vals in enumerate(response_labels_sample):
    print("Update {} records".format(index)) if (index % 250 == 0) else None
    cdsw.track_delayed_metrics({"final_label": vals["final_label"]}, vals["uuid"])
    if index % 100 == 99:
        window = response_labels_sample[index - 99 : index + 1]
        actual = [v["final_label"] for v in window]
        predicted = [v["response_label"][0] for v in window]
        accuracy = sum(a == p for a, p in zip(actual, predicted)) / len(window)
        end_timestamp_ms = vals["timestamp_ms"]
        print("Adding accuracy metric", accuracy)
        cdsw.track_aggregate_metrics(
            {"accuracy": accuracy},
            window[0]["timestamp_ms"],
            end_timestamp_ms,
            model_deployment_crn=Deployment_CRN,
        )
        random.random()

print("simulation done:", len(response_labels_sample), "predictions since", start_timestamp_ms)
