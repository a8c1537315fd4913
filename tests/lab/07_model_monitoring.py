# Written as the lab's 07_model_monitoring.py is, for a CML session: it knows nothing of modelvigil.
import os
import time

import matplotlib

matplotlib.use("Agg")
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from src.api import ApiUtility  # noqa: E402

try:
    import cml.utils_v1 as utils

    cdsw = utils._emulate_cdsw()
except ImportError:
    import cdsw

USERNAME = os.environ["PROJECT_OWNER"]
modelName = "FraudCLF-" + USERNAME
OUT = os.environ.get("LAB_OUT", ".")

apiUtil = ApiUtility()
Model_CRN = apiUtil.get_latest_deployment_details(model_name=modelName)["model_crn"]
Deployment_CRN = apiUtil.get_latest_deployment_details(model_name=modelName)["latest_deployment_crn"]

current_timestamp_ms = int(round(time.time() * 1000))
known_metrics = cdsw.read_metrics(
    model_deployment_crn=Deployment_CRN, start_timestamp_ms=0, end_timestamp_ms=current_timestamp_ms
)

df = pd.json_normalize(known_metrics["metrics"])
print(df.shape)

# Latency of each prediction in ms, and the accuracy aggregates over time.
predictions = df[df["predictionUuid"] != ""].copy()
predictions["latency_ms"] = predictions["endTimeStampMs"] - predictions["startTimeStampMs"]
aggregates = df.dropna(subset=["metrics.accuracy"])

sns.set_style("whitegrid")
ax = sns.lineplot(x=range(len(aggregates)), y="metrics.accuracy", data=aggregates)
ax.set_title("Model accuracy per 100 predictions")
ax.get_figure().savefig(os.path.join(OUT, "accuracy.png"))
ax.get_figure().clf()
ax = sns.histplot(predictions["latency_ms"])
ax.set_title("Prediction latency (ms)")
ax.get_figure().savefig(os.path.join(OUT, "latency.png"))

labelled = predictions["metrics.final_label"].notna().sum()
print(f"predictions {len(predictions)} labelled {labelled} aggregates {len(aggregates)}")
