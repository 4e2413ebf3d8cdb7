"""Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs", arXiv 1801.01401, sec. 4): the
unbiased squared MMD between detector features of real and generated images with the cubic polynomial kernel
k(x, y) = (x . y / d + 1)^3, averaged over random subsets."""

from __future__ import annotations

import numpy as np

from . import metric_utils


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x . y / d + 1)^3 for rows x [n, d], y [m, d] -> [n, m] float64."""
    d = x.shape[1]
    return (np.asarray(x, np.float64) @ np.asarray(y, np.float64).T / d + 1) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of two samples of equal size m:
    sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (m (m - 1)) - 2 sum_{i, j} k(x_i, y_j) / m^2.

    Raises:
        ValueError: Unequal sizes or fewer than 2 rows.
    """
    m = x.shape[0]
    if y.shape[0] != m or m < 2:
        raise ValueError(f'mmd2_unbiased(): x and y must have the same number (>= 2) of rows, got {x.shape}, {y.shape}')
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    sum_xx = kxx.sum() - np.trace(kxx)
    sum_yy = kyy.sum() - np.trace(kyy)
    return float((sum_xx + sum_yy) / (m * (m - 1)) - 2 * kxy.sum() / (m * m))


def kernel_inception_distance(
    real_features: np.ndarray,
    gen_features: np.ndarray,
    num_subsets: int = 100,
    max_subset_size: int = 1000,
    seed: int = 123,
) -> float:
    """Mean unbiased MMD^2 over `num_subsets` random subsets of m = min(n_real, n_gen, max_subset_size) rows each
    (drawn without replacement from each set, `RandomState(seed)`, generated rows first).

    Args:
        real_features: [n_real, d] float.
        gen_features: [n_gen, d] float.

    Returns:
        KID (unitless; often reported x 1000).

    Raises:
        ValueError: Fewer than 2 rows in a set or different feature sizes.
    """
    if real_features.ndim != 2 or gen_features.ndim != 2 or real_features.shape[1] != gen_features.shape[1]:
        raise ValueError(
            f'kernel_inception_distance(): features must be [n, d] with one d, got {real_features.shape} and '
            f'{gen_features.shape}'
        )
    m = min(real_features.shape[0], gen_features.shape[0], max_subset_size)
    rng = np.random.RandomState(seed)
    total = 0.0
    for _ in range(num_subsets):
        x = gen_features[rng.choice(gen_features.shape[0], m, replace=False)]
        y = real_features[rng.choice(real_features.shape[0], m, replace=False)]
        total += mmd2_unbiased(x, y)
    return total / num_subsets


def compute_kid(
    opts: metric_utils.MetricOptions, max_real: int | None, num_gen: int, num_subsets: int, max_subset_size: int
) -> float:
    """KID between the dataset (at most `max_real` images) and `num_gen` generated images.

    Returns:
        The KID (NaN on ranks other than 0).

    Raises:
        metric_utils.MetricError: Missing dataset or detector.
    """
    real = metric_utils.compute_feature_stats_for_dataset(opts, capture_all=True, max_items=max_real)
    gen = metric_utils.compute_feature_stats_for_generator(opts, num_items=num_gen, capture_all=True)
    if opts.rank != 0:
        return float('nan')
    return kernel_inception_distance(real.get_all(), gen.get_all(), num_subsets, max_subset_size)
