"""The spectral lab's request fields are validated by the one request validation (``engine.protocol``)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.protocol import REQUEST_LIMITS, RenderRequest, clamp_request, request_errors


def test_lab_ranges_are_request_limits():
    assert REQUEST_LIMITS['lab_beta'] == (0.0, 1000.0) and REQUEST_LIMITS['lab_interp'] == (1, 16)


@pytest.mark.parametrize(
    ('field', 'value', 'clamped'),
    [('lab_beta', -1.0, 0.0), ('lab_beta', 5000.0, 1000.0), ('lab_interp', 0, 1), ('lab_interp', 99, 16)],
)
def test_out_of_range_lab_values_clamp_with_a_note(field, value, clamped):
    req, notes = clamp_request(RenderRequest(**{field: value}))
    assert getattr(req, field) == clamped and len(notes) == 1 and field in notes[0]
    assert request_errors(RenderRequest(**{field: value})) == ()  # a range problem only: clamping fixes it


def test_legal_lab_values_pass_unchanged():
    req = RenderRequest(lab_beta=np.float32(8.0), lab_interp=np.int64(4), lab_norm=(188.9, 78.3))
    assert clamp_request(req) == (req, ()) and request_errors(req) == ()
    assert clamp_request(RenderRequest()) == (RenderRequest(), ())


@pytest.mark.parametrize(
    ('field', 'value'),
    [
        ('lab_beta', float('nan')),
        ('lab_beta', float('inf')),
        ('lab_beta', True),
        ('lab_beta', '8'),
        ('lab_interp', 2.5),
        ('lab_interp', True),
        ('lab_interp', None),
        ('lab_norm', (1.0, 0.0)),
        ('lab_norm', (1.0, -2.0)),
        ('lab_norm', (float('nan'), 1.0)),
        ('lab_norm', (1.0,)),
        ('lab_norm', 'mean,std'),
        ('lab_norm', (True, 1.0)),
    ],
)
def test_bad_lab_values_are_named_not_clamped(field, value):
    req = RenderRequest(**{field: value})
    errors = request_errors(req)
    assert len(errors) == 1 and errors[0].startswith(f'{field} must be'), errors
    fixed, notes = clamp_request(req)  # does not raise nor guess a value
    assert fixed is req and notes == ()
