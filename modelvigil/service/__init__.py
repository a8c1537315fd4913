"""The embedded, CML-compatible model service: the app (`app.create_app`) assembled from one router
per surface, its dependencies and errors, the scorer, payload parsing, request telemetry, fault
injection and the launcher (`embedded`).

The service side of the house: it may use the store, never the client or the analysis.
"""
