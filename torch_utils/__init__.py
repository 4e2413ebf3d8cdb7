"""PyTorch utilities whose module and function names match the ones embedded network sources import.

Network pickles written by the reference tools (and by ours) embed the source of the module that defined each
network; that source does `from torch_utils import persistence, misc` and `from torch_utils.ops import ...`. Keep
these names and signatures stable (docs/compatibility.md §2). Nothing heavy happens at import time.
"""
