"""Cached options views behave like Beam's fresh ones (pipelines/beam_options.py)."""
from __future__ import annotations

import copy
import pickle

from apache_beam.options.pipeline_options import DebugOptions, PipelineOptions, StandardOptions

from pipelines.beam_options import ViewCachingOptions


def test_views_are_made_once_and_share_the_option_values() -> None:
    opts = ViewCachingOptions(["--runner=FnApiRunner", "--experiments=a"])
    std = opts.view_as(StandardOptions)
    assert opts.view_as(StandardOptions) is std and std.runner == "FnApiRunner"
    opts.view_as(DebugOptions).experiments.append("b")
    std.runner = "Other"  # a write through one view is seen through every view
    assert opts.view_as(StandardOptions).runner == "Other"
    fresh = PipelineOptions.view_as(opts, DebugOptions)  # Beam's own, uncached view
    assert fresh.experiments == ["a", "b"] and fresh is not opts.view_as(DebugOptions)


def test_a_copy_has_its_own_values_and_views() -> None:
    opts = ViewCachingOptions(["--runner=FnApiRunner"])
    opts.view_as(StandardOptions)
    for other in (copy.deepcopy(opts), pickle.loads(pickle.dumps(opts))):
        other.view_as(StandardOptions).runner = "Copy"
        assert other.view_as(StandardOptions).runner == "Copy"
        assert opts.view_as(StandardOptions).runner == "FnApiRunner"
