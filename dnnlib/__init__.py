"""Minimal `dnnlib` package: what reference network pickles and user scripts expect (`dnnlib.util.EasyDict`)."""

from . import util
from .util import EasyDict

__all__ = ['EasyDict', 'util']
