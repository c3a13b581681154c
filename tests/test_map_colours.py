"""Legend colours that colour-blind readers can tell apart: every pair of colours that a legend shows
together is at least ΔE 20 apart (CAM02-UCS) under a simulated deuteranopia (colorspacious)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from colorspacious import cspace_convert, deltaE

from maps import styles

DEUTERANOPIA = {"name": "sRGB1+CVD", "cvd_type": "deuteranomaly", "severity": 100}
MIN_DELTA_E = 20


def _seen_by_deuteranope(colour: str) -> np.ndarray:
    rgb = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    return np.clip(cspace_convert(rgb, DEUTERANOPIA, "sRGB1"), 0, 1)


LEGENDS = {
    # the zone page shows conditions and case states (with the overdue ring) in one legend
    "conditions + case states": [
        *styles.CONDITION_COLOURS.values(),
        *styles.STATE_COLOURS.values(),
        styles.OVERDUE_COLOUR,
    ],
    "phases": list(styles.PHASE_COLOURS.values()),
    "completion": [c for _, c in styles.COMPLETION_BREAKS],
}


@pytest.mark.parametrize("name", LEGENDS)
def test_every_pair_of_legend_colours_is_apart_under_deuteranopia(name):
    colours = LEGENDS[name]
    assert len(set(colours)) == len(colours)
    close = [
        (a, b, round(float(d), 1))
        for a, b in itertools.combinations(colours, 2)
        if (d := deltaE(_seen_by_deuteranope(a), _seen_by_deuteranope(b), input_space="sRGB1")) < MIN_DELTA_E
    ]
    assert close == []


def test_the_old_palette_fails_the_check():
    # the colours before this check: 已上报 #e6550d next to 维修中 #fdae61 among others
    old = ["#1a9641", "#d7191c", "#fdae61", "#969696", "#e6550d", "#fd8d3c", "#6baed6", "#3182bd"]
    assert any(
        deltaE(_seen_by_deuteranope(a), _seen_by_deuteranope(b), input_space="sRGB1") < MIN_DELTA_E
        for a, b in itertools.combinations(old, 2)
    )
