"""Fréchet Inception Distance (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule Converge to a
Local Nash Equilibrium", arXiv 1706.08500, eq. 6): the Fréchet distance between Gaussians fitted to detector
features of real and generated images."""

from __future__ import annotations

import numpy as np

from . import metric_utils


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """d^2 = |mu1 - mu2|^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)).

    The trace of the matrix square root is computed without forming it: with S = sigma1^(1/2) (symmetric, by
    eigendecomposition), sigma1 sigma2 is similar to S sigma2 S, which is symmetric PSD, so
    Tr((sigma1 sigma2)^(1/2)) = sum(sqrt(eig(S sigma2 S))). This equals the `scipy.linalg.sqrtm` formulation
    and stays real and stable for singular covariances.

    Args:
        mu1, mu2: Means [F] (float).
        sigma1, sigma2: Covariances [F, F] (symmetric positive semi-definite).

    Returns:
        The squared Fréchet distance (>= 0 up to rounding).

    Raises:
        ValueError: On mismatched shapes.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    f = mu1.shape[0]
    if mu2.shape != (f,) or sigma1.shape != (f, f) or sigma2.shape != (f, f):
        raise ValueError(
            f'frechet_distance(): shapes must be mu [F] and sigma [F, F] for one F, got {mu1.shape}, '
            f'{sigma1.shape}, {mu2.shape}, {sigma2.shape}'
        )
    evals, evecs = np.linalg.eigh((sigma1 + sigma1.T) / 2)
    sqrt1 = (evecs * np.sqrt(np.clip(evals, 0, None))) @ evecs.T
    m = sqrt1 @ ((sigma2 + sigma2.T) / 2) @ sqrt1
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    return float(np.square(mu1 - mu2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


def compute_fid(opts: metric_utils.MetricOptions, max_real: int | None, num_gen: int) -> float:
    """FID between the dataset (first `max_real` images, None = all) and `num_gen` generated images.

    Returns:
        The FID (NaN on ranks other than 0).

    Raises:
        metric_utils.MetricError: Missing dataset or detector.
    """
    real = metric_utils.compute_feature_stats_for_dataset(opts, capture_mean_cov=True, max_items=max_real)
    gen = metric_utils.compute_feature_stats_for_generator(opts, num_items=num_gen, capture_mean_cov=True)
    if opts.rank != 0:
        return float('nan')
    mu_real, sigma_real = real.get_mean_cov()
    mu_gen, sigma_gen = gen.get_mean_cov()
    return frechet_distance(mu_gen, sigma_gen, mu_real, sigma_real)
