"""`cml` in a `modelvigil session`: the parts of CML's in-session package the lab's code imports."""
