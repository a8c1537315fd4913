"""Developer tools run through `./run` that are neither the product nor its test suite."""
