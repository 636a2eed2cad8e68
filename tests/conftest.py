"""Hypothesis profiles: ``ci`` (default) draws a fixed sequence of examples so that CI is
reproducible; ``HYPOTHESIS_PROFILE=explore`` draws fresh random examples, ten times as many
(run it now and then: it is how new bad inputs are found)."""
import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("explore", max_examples=600, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
