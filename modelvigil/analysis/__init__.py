"""The monitoring analysis: windows, window metrics, drift, the alert rules, plots and the report.

Reference statistics are fitted once, then every window is measured against them (NannyML's
shape); windowing lives in `windows` alone. The analysis reaches the store and the client only
through `readers`.
"""
