"""Adaptive discriminator augmentation (ADA): a differentiable, per-sample random augmentation pipeline.

Implements the 18 transformations of Karras et al. 2020, "Training Generative Adversarial Networks with Limited
Data" (arXiv 2006.06676), Appendix B, in its five groups:

- pixel blitting: x-flip, 90-degree rotations, integer translation (exact pixel moves, reflection padding);
- general geometric: isotropic scaling, arbitrary rotation (applied twice, before and after anisotropic scaling),
  anisotropic scaling, fractional translation; composed into one 3x3 affine matrix per sample and executed by
  padding with reflection, upsampling 2x with a low-pass filter, bilinear resampling with `grid_sample` and
  low-pass downsampling back to the original size;
- colour: brightness, contrast, luma flip, hue rotation, saturation; composed into one 4x4 matrix per sample;
- image-space filtering: per-band gains for four octave bands (lognormal), normalised to keep the expected energy;
- corruption: additive Gaussian noise and cutout.

Each transformation is applied to a sample with probability `multiplier * p`, where `p` is the buffer that the
training loop adjusts adaptively (ADA, Sec. 3 of the paper). With `p == 0` the pipeline is the identity.

This module is embedded into network pickles, so it may import only numpy, scipy.signal, torch and the
`torch_utils` names of docs/compatibility.md §2.
"""

import numpy as np
import scipy.signal
import torch

from torch_utils import misc, persistence
from torch_utils.ops import conv2d_gradfix, grid_sample_gradfix, upfirdn2d

# ----------------------------------------------------------------------------
# Named multiplier presets, as in the reference `train.py --augpipe` (b = blit, g = geom, c = color, f = filter,
# n = noise, c = cutout). Read-only.

_BLIT = dict(xflip=1, rotate90=1, xint=1)
_GEOM = dict(scale=1, rotate=1, aniso=1, xfrac=1)
_COLOR = dict(brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)
_FILTER = dict(imgfilter=1)
_NOISE = dict(noise=1)
_CUTOUT = dict(cutout=1)
AUGPIPE_SPECS = {
    'blit': dict(_BLIT),
    'geom': dict(_GEOM),
    'color': dict(_COLOR),
    'filter': dict(_FILTER),
    'noise': dict(_NOISE),
    'cutout': dict(_CUTOUT),
    'bg': {**_BLIT, **_GEOM},
    'bgc': {**_BLIT, **_GEOM, **_COLOR},
    'bgcf': {**_BLIT, **_GEOM, **_COLOR, **_FILTER},
    'bgcfn': {**_BLIT, **_GEOM, **_COLOR, **_FILTER, **_NOISE},
    'bgcfnc': {**_BLIT, **_GEOM, **_COLOR, **_FILTER, **_NOISE, **_CUTOUT},
}

# ----------------------------------------------------------------------------
# Homogeneous transformation matrices, batched: every argument is a scalar or a tensor [N]; the result is
# [N, 3, 3] (2-D) or [N, 4, 4] (3-D colour space) float32.


def _matrix(rows, device):
    n = max([int(v.numel()) for row in rows for v in row if isinstance(v, torch.Tensor)] + [1])
    elems = []
    for row in rows:
        for v in row:
            t = v if isinstance(v, torch.Tensor) else torch.tensor(float(v), device=device)
            elems.append(t.to(device=device, dtype=torch.float32).reshape(-1).expand(n))
    return torch.stack(elems, dim=-1).reshape(n, len(rows), len(rows[0]))


def _translate2d(tx, ty, device):
    return _matrix([[1, 0, tx], [0, 1, ty], [0, 0, 1]], device)


def _scale2d(sx, sy, device):
    return _matrix([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], device)


def _rotate2d(theta, device):
    c, s = torch.cos(theta), torch.sin(theta)
    return _matrix([[c, -s, 0], [s, c, 0], [0, 0, 1]], device)


def _translate3d(tx, ty, tz, device):
    return _matrix([[1, 0, 0, tx], [0, 1, 0, ty], [0, 0, 1, tz], [0, 0, 0, 1]], device)


def _scale3d(sx, sy, sz, device):
    return _matrix([[sx, 0, 0, 0], [0, sy, 0, 0], [0, 0, sz, 0], [0, 0, 0, 1]], device)


def _rotate3d(axis, theta, device):
    """Rotation by `theta` [N] around the unit vector `axis` (3 floats), Rodrigues' formula."""
    ax, ay, az = axis
    c, s = torch.cos(theta), torch.sin(theta)
    d = 1 - c
    return _matrix(
        [
            [ax * ax * d + c, ax * ay * d - az * s, ax * az * d + ay * s, 0],
            [ay * ax * d + az * s, ay * ay * d + c, ay * az * d - ax * s, 0],
            [az * ax * d - ay * s, az * ay * d + ax * s, az * az * d + c, 0],
            [0, 0, 0, 1],
        ],
        device,
    )


# ----------------------------------------------------------------------------
# Filters designed once per pipeline (deterministic, stored as buffers).


def _design_resample_filter(numtaps=12):
    """Low-pass filter for the 2x up/down-sampling around `grid_sample`: cut-off at the original Nyquist frequency.

    The paper uses a 12-tap symmetric wavelet filter; a Kaiser-windowed sinc of the same length serves the same
    purpose (suppress the images created by the 2x zero insertion and the aliases before decimation).
    """
    return scipy.signal.firwin(numtaps, cutoff=0.5, window=('kaiser', 6.0)).astype(np.float32)


def _design_band_filters(numtaps=43):
    """Four 1-D filters splitting [0, Nyquist] into octave bands [0, 1/8], [1/8, 1/4], [1/4, 1/2], [1/2, 1].

    Band k is `lowpass(hi_k) - lowpass(lo_k)` (with `lowpass(1)` the unit impulse), so the four bands sum exactly to
    the identity filter: unit gains leave an image unchanged. Returns [4, numtaps] float32.
    """
    delta = np.zeros(numtaps)
    delta[numtaps // 2] = 1
    lows = [np.zeros(numtaps)] + [scipy.signal.firwin(numtaps, cutoff=f) for f in (1 / 8, 1 / 4, 1 / 2)] + [delta]
    return np.stack([lows[k + 1] - lows[k] for k in range(4)]).astype(np.float32)


# Expected share of image energy in each band for natural images (their power spectra fall off roughly as 1/f^2,
# so most energy sits in the lowest band). Used to normalise random band gains (Appendix B, image-space filtering).
_BAND_ENERGY = np.array([0.85, 0.08, 0.045, 0.025], dtype=np.float32)

# Luma axis in RGB (unit vector along grey), the axis of luma flip, hue rotation and saturation (Appendix B).
_LUMA_AXIS = (1 / np.sqrt(3), 1 / np.sqrt(3), 1 / np.sqrt(3))


def _reflect_index(idx, size):
    """Maps integer indices onto [0, size) by mirror reflection without repeating the edge (like 'reflect' padding)."""
    if size == 1:
        return torch.zeros_like(idx)
    period = 2 * (size - 1)
    idx = torch.remainder(idx, period)
    return torch.where(idx >= size, period - idx, idx)


# ----------------------------------------------------------------------------


@persistence.persistent_class
class AugmentPipe(torch.nn.Module):
    """The ADA augmentation pipeline (Karras et al. 2020, arXiv 2006.06676, Appendix B).

    Every keyword `<name>` is the probability multiplier of one transformation; the transformation is applied to
    each sample independently with probability `<name> * p` (clamped to 1). `<name>_std` / `<name>_max` set the
    strength of the random parameters, with the paper's defaults.

    Args:
        xflip, rotate90, xint: pixel blitting multipliers (horizontal flip, rotation by k*90 deg, integer shift).
        xint_max: largest integer translation as a fraction of the image size.
        scale, rotate, aniso, xfrac: general geometric multipliers.
        scale_std, aniso_std: std of log2 of the (an)isotropic scale factor.
        rotate_max: largest rotation as a fraction of 180 degrees.
        xfrac_std: std of the fractional translation as a fraction of the image size.
        brightness, contrast, lumaflip, hue, saturation: colour multipliers.
        brightness_std: std of the added brightness offset (images in [-1, 1]).
        contrast_std, saturation_std: std of log2 of the contrast / saturation factor.
        hue_max: largest hue rotation as a fraction of 180 degrees.
        imgfilter: image-space filtering multiplier; imgfilter_bands: per-band multipliers (4 values);
        imgfilter_std: std of log2 of each band gain.
        noise, cutout: corruption multipliers; noise_std: std of the noise sigma (half-normal);
        cutout_size: side of the cut-out square as a fraction of the image size.

    The adaptive augmentation probability is the scalar buffer `p` (float32, >= 0, starts at 1; the training loop
    sets it).
    """

    def __init__(
        self,
        xflip=0, rotate90=0, xint=0, xint_max=0.125,
        scale=0, rotate=0, aniso=0, xfrac=0, scale_std=0.2, rotate_max=1, aniso_std=0.2, xfrac_std=0.125,
        brightness=0, contrast=0, lumaflip=0, hue=0, saturation=0, brightness_std=0.2, contrast_std=0.5,
        hue_max=1, saturation_std=1,
        imgfilter=0, imgfilter_bands=(1, 1, 1, 1), imgfilter_std=1,
        noise=0, cutout=0, noise_std=0.1, cutout_size=0.5,
    ):  # fmt: skip
        super().__init__()
        self.register_buffer('p', torch.ones([]))  # Overall augmentation probability (ADA).

        # Pixel blitting.
        self.xflip = float(xflip)
        self.rotate90 = float(rotate90)
        self.xint = float(xint)
        self.xint_max = float(xint_max)

        # General geometric transformations.
        self.scale = float(scale)
        self.rotate = float(rotate)
        self.aniso = float(aniso)
        self.xfrac = float(xfrac)
        self.scale_std = float(scale_std)
        self.rotate_max = float(rotate_max)
        self.aniso_std = float(aniso_std)
        self.xfrac_std = float(xfrac_std)

        # Colour transformations.
        self.brightness = float(brightness)
        self.contrast = float(contrast)
        self.lumaflip = float(lumaflip)
        self.hue = float(hue)
        self.saturation = float(saturation)
        self.brightness_std = float(brightness_std)
        self.contrast_std = float(contrast_std)
        self.hue_max = float(hue_max)
        self.saturation_std = float(saturation_std)

        # Image-space filtering.
        self.imgfilter = float(imgfilter)
        self.imgfilter_bands = [float(b) for b in imgfilter_bands]
        self.imgfilter_std = float(imgfilter_std)
        if len(self.imgfilter_bands) != 4:
            raise ValueError(f'AugmentPipe(): imgfilter_bands must have 4 values, got {list(imgfilter_bands)}')

        # Corruption.
        self.noise = float(noise)
        self.cutout = float(cutout)
        self.noise_std = float(noise_std)
        self.cutout_size = float(cutout_size)

        # Deterministic filters. Buffer names and shapes match the reference pipeline's (`Hz_geom` [12],
        # `Hz_fbank` [4, 43]) so that snapshots of either implementation load into the other's class.
        self.register_buffer('Hz_geom', upfirdn2d.setup_filter(_design_resample_filter()))  # [12]
        self.register_buffer('Hz_fbank', torch.as_tensor(_design_band_filters()))  # [4, 43]

    # ------------------------------------------------------------------
    # Random draws; `debug_percentile` (a float in [0, 1]) replaces them by one fixed quantile for visualisation.

    def _rand(self, shape, device, debug_percentile):
        if debug_percentile is not None:
            return torch.full(shape, float(debug_percentile), device=device)
        return torch.rand(shape, device=device)

    def _randn(self, shape, device, debug_percentile):
        if debug_percentile is not None:
            q = torch.tensor(min(max(float(debug_percentile), 1e-6), 1 - 1e-6), dtype=torch.float64)
            return torch.full(shape, float(np.sqrt(2) * torch.erfinv(2 * q - 1)), device=device)
        return torch.randn(shape, device=device)

    def _gate(self, values, neutral, prob, dp):
        """Keeps each of `values` [N] with probability `prob` (a scalar tensor in [0, 1]), else uses `neutral`.

        In debug mode (`dp` not None) every value is kept.
        """
        if dp is not None:
            return values
        draw = torch.rand(values.shape[:1], device=values.device)
        return torch.where(draw < prob, values, torch.full_like(values, neutral))

    # ------------------------------------------------------------------

    def forward(self, images, debug_percentile=None):
        """Augments a batch of images.

        Args:
            images: [N, C, H, W] float32 tensor, any device, roughly in [-1, 1]; C is 1 or 3, H == W when rotate90
                is enabled. Gradients flow through every transformation.
            debug_percentile: None for random augmentation, or a float in [0, 1] that replaces every random draw by
                that quantile (and applies every enabled transformation) -- for visualising the pipeline.

        Returns:
            [N, C, H, W] float32 tensor, the augmented images (the input itself when nothing is applied).

        Raises:
            ValueError: if `images` is not a 4-D tensor with 1 or 3 channels.
        """
        if not isinstance(images, torch.Tensor) or images.ndim != 4:
            raise ValueError(f'AugmentPipe.forward(): images must be a [N, C, H, W] tensor, got {type(images)}')
        N, C, H, W = images.shape
        if C not in (1, 3):
            raise ValueError(f'AugmentPipe.forward(): images must have 1 or 3 channels, got {C}')
        misc.assert_shape(images, [N, C, H, W])
        device = images.device
        dp = debug_percentile
        p = self.p.detach().to(device=device, dtype=torch.float32)
        images = self._blit(images, p, dp)
        images = self._geometric(images, p, dp)
        images = self._color(images, p, dp)
        images = self._filter(images, p, dp)
        images = self._corrupt(images, p, dp)
        return images

    # ------------------------------------------------------------------
    # Pixel blitting (exact): Appendix B, "pixel blitting".

    def _blit(self, images, p, dp):
        N, C, H, W = images.shape
        device = images.device
        if self.xflip > 0:
            i = torch.floor(self._rand([N], device, dp) * 2).clamp(0, 1)  # Flip or not, each with probability 1/2.
            i = self._gate(i, 0, (p * self.xflip).clamp(0, 1), dp)
            images = torch.where(i.reshape(N, 1, 1, 1) > 0, images.flip(3), images)
        if self.rotate90 > 0:
            if H != W:
                raise ValueError(f'AugmentPipe.forward(): rotate90 needs square images, got {H}x{W}')
            k = torch.floor(self._rand([N], device, dp) * 4).clamp(0, 3)  # Quarter turns.
            k = self._gate(k, 0, (p * self.rotate90).clamp(0, 1), dp)
            out = images
            for i in (1, 2, 3):
                out = torch.where((k == i).reshape(N, 1, 1, 1), torch.rot90(images, i, dims=(2, 3)), out)
            images = out
        if self.xint > 0:
            t = (self._rand([N, 2], device, dp) * 2 - 1) * self.xint_max  # [N, 2] fraction of the image size
            keep = self._gate(torch.ones([N], device=device), 0, (p * self.xint).clamp(0, 1), dp)
            t = t * keep[:, None]
            tx = torch.round(t[:, 0] * W).to(torch.int64)  # [N] whole pixels
            ty = torch.round(t[:, 1] * H).to(torch.int64)
            if bool((tx != 0).any() or (ty != 0).any()):
                ix = _reflect_index(torch.arange(W, device=device)[None, :] - tx[:, None], W)  # [N, W]
                iy = _reflect_index(torch.arange(H, device=device)[None, :] - ty[:, None], H)  # [N, H]
                n_idx = torch.arange(N, device=device)[:, None, None]
                images = images.permute(0, 2, 3, 1)[n_idx, iy[:, :, None], ix[:, None, :]].permute(0, 3, 1, 2)
        return images

    # ------------------------------------------------------------------
    # General geometric transformations: Appendix B, "general geometric transformations".

    def _geometric_matrix(self, N, p, device, dp):
        """Inverse transform [N, 3, 3] mapping output to input coordinates (centred, in pixels divided by size)."""
        G_inv = torch.eye(3, device=device).expand(N, 3, 3)
        if self.scale > 0:
            s = self._gate(
                torch.exp2(self._randn([N], device, dp) * self.scale_std), 1, (p * self.scale).clamp(0, 1), dp
            )
            G_inv = G_inv @ _scale2d(1 / s, 1 / s, device)
        # The rotation is applied twice (before and after anisotropic scaling) with probability p_rot each, chosen
        # so that the probability of rotating at all is `rotate * p`: 1 - (1 - p_rot)^2 = rotate * p.
        p_rot = 1 - torch.sqrt(torch.clamp(1 - torch.clamp(p * self.rotate, 0, 1), min=0))
        if self.rotate > 0:
            theta = (self._rand([N], device, dp) * 2 - 1) * np.pi * self.rotate_max
            theta = self._gate(theta, 0, p_rot, dp)
            G_inv = G_inv @ _rotate2d(-theta, device)
        if self.aniso > 0:
            s = self._gate(
                torch.exp2(self._randn([N], device, dp) * self.aniso_std), 1, (p * self.aniso).clamp(0, 1), dp
            )
            G_inv = G_inv @ _scale2d(1 / s, s, device)
        if self.rotate > 0:
            theta = (self._rand([N], device, dp) * 2 - 1) * np.pi * self.rotate_max
            theta = self._gate(theta, 0, p_rot, dp)
            G_inv = G_inv @ _rotate2d(-theta, device)
        if self.xfrac > 0:
            t = self._randn([N, 2], device, dp) * self.xfrac_std
            keep = self._gate(torch.ones([N], device=device), 0, (p * self.xfrac).clamp(0, 1), dp)
            G_inv = G_inv @ _translate2d(-t[:, 0] * keep, -t[:, 1] * keep, device)
        return G_inv

    def _geometric(self, images, p, dp):
        if not (self.scale > 0 or self.rotate > 0 or self.aniso > 0 or self.xfrac > 0):
            return images
        N, C, H, W = images.shape
        device = images.device
        G_inv = self._geometric_matrix(N, p, device, dp)  # [N, 3, 3], unit = image size
        is_identity = (G_inv - torch.eye(3, device=device)).abs().amax(dim=(1, 2)) < 1e-7  # [N]
        if bool(is_identity.all()):
            return images

        # Work in pixels, origin at the image centre: x_px = x * W, y_px = y * H.
        to_px = _scale2d(W, H, device)
        G_inv_px = to_px @ G_inv @ _scale2d(1 / W, 1 / H, device)  # [N, 3, 3]

        # Reflection padding that covers the source region of the output (plus the filter support).
        f = self.Hz_geom
        margin_out = f.shape[0] / 4 + 1  # Half the filter support at 2x, in output pixels.
        cx, cy = W / 2 + margin_out, H / 2 + margin_out
        corners = torch.tensor([[-cx, -cy, 1], [cx, -cy, 1], [cx, cy, 1], [-cx, cy, 1]], device=device)
        src = (G_inv_px @ corners.t()).permute(0, 2, 1)[..., :2]  # [N, 4, 2] source points in pixels
        margin_in = f.shape[0] / 4 + 1
        lo = (src.amin(dim=(0, 1)) - margin_in).cpu().numpy()
        hi = (src.amax(dim=(0, 1)) + margin_in).cpu().numpy()
        pad_x0 = int(np.clip(np.ceil(-lo[0] - W / 2), 0, W - 1))
        pad_x1 = int(np.clip(np.ceil(hi[0] - W / 2), 0, W - 1))
        pad_y0 = int(np.clip(np.ceil(-lo[1] - H / 2), 0, H - 1))
        pad_y1 = int(np.clip(np.ceil(hi[1] - H / 2), 0, H - 1))
        x = torch.nn.functional.pad(images, [pad_x0, pad_x1, pad_y0, pad_y1], mode='reflect')
        Hp, Wp = x.shape[2], x.shape[3]

        # Upsample 2x (pixel k of the padded image covers [k, k+1) in padded pixel units u).
        x = upfirdn2d.upsample2d(x, f, up=2)  # [N, C, 2*Hp, 2*Wp]

        # Sampling grid for a 2x output: output pixel m has centre (m + 0.5) / 2 - size/2 in centred output pixels.
        ox = (torch.arange(2 * W, device=device, dtype=torch.float32) + 0.5) / 2 - W / 2
        oy = (torch.arange(2 * H, device=device, dtype=torch.float32) + 0.5) / 2 - H / 2
        gy, gx = torch.meshgrid(oy, ox, indexing='ij')
        pts = torch.stack([gx, gy, torch.ones_like(gx)], dim=-1).reshape(1, -1, 3)  # [1, 4HW, 3]
        src = pts @ G_inv_px.transpose(1, 2)  # [N, 4HW, 3] source in centred input pixels
        u = src[..., 0] + W / 2 + pad_x0  # Padded pixel units.
        v = src[..., 1] + H / 2 + pad_y0
        # grid_sample, align_corners=False: -1 is the left edge of pixel 0, +1 the right edge of the last pixel.
        grid = torch.stack([2 * u / Wp - 1, 2 * v / Hp - 1], dim=-1).reshape(N, 2 * H, 2 * W, 2)
        x = grid_sample_gradfix.grid_sample(x, grid)

        # Downsample 2x back to [N, C, H, W].
        x = upfirdn2d.downsample2d(x, f, down=2)
        misc.assert_shape(x, [N, C, H, W])
        return torch.where(is_identity.reshape(N, 1, 1, 1), images, x)

    # ------------------------------------------------------------------
    # Colour transformations: Appendix B, "color transformations".

    def _color(self, images, p, dp):
        if not (self.brightness > 0 or self.contrast > 0 or self.lumaflip > 0 or self.hue > 0 or self.saturation > 0):
            return images
        N, C, H, W = images.shape
        device = images.device
        I4 = torch.eye(4, device=device)
        v = torch.tensor([*_LUMA_AXIS, 0], device=device, dtype=torch.float32)  # Luma axis, homogeneous.
        vvT = torch.outer(v, v)
        M = I4.expand(N, 4, 4)
        if self.brightness > 0:
            b = self._gate(self._randn([N], device, dp) * self.brightness_std, 0, (p * self.brightness).clamp(0, 1), dp)
            M = _translate3d(b, b, b, device) @ M
        if self.contrast > 0:
            c = self._gate(
                torch.exp2(self._randn([N], device, dp) * self.contrast_std), 1, (p * self.contrast).clamp(0, 1), dp
            )
            M = _scale3d(c, c, c, device) @ M
        if self.lumaflip > 0:
            i = self._gate(
                torch.floor(self._rand([N], device, dp) * 2).clamp(0, 1), 0, (p * self.lumaflip).clamp(0, 1), dp
            )
            M = (I4 - 2 * vvT * i.reshape(N, 1, 1)) @ M  # Householder reflection along the luma axis.
        if self.hue > 0 and C > 1:
            theta = (self._rand([N], device, dp) * 2 - 1) * np.pi * self.hue_max
            theta = self._gate(theta, 0, (p * self.hue).clamp(0, 1), dp)
            M = _rotate3d(_LUMA_AXIS, theta, device) @ M
        if self.saturation > 0 and C > 1:
            s = self._randn([N], device, dp) * self.saturation_std
            s = self._gate(torch.exp2(s), 1, (p * self.saturation).clamp(0, 1), dp).reshape(N, 1, 1)
            M = (vvT + (I4 - vvT) * s) @ M

        if bool((M - I4).abs().amax() == 0):
            return images
        flat = images.reshape(N, C, H * W)
        if C == 3:
            out = M[:, :3, :3] @ flat + M[:, :3, 3:]
        else:  # Greyscale: apply to (g, g, g) and take the mean of the resulting channels.
            out = (M[:, :3, :3].sum(dim=2, keepdim=True) @ flat + M[:, :3, 3:]).mean(dim=1, keepdim=True)
        return out.reshape(N, C, H, W)

    # ------------------------------------------------------------------
    # Image-space filtering: Appendix B, "image-space filtering".

    def _filter(self, images, p, dp):
        if not self.imgfilter > 0:
            return images
        N, C, H, W = images.shape
        device = images.device
        gains = torch.ones([N, 4], device=device)
        for k, band in enumerate(self.imgfilter_bands):
            if band > 0:
                g = torch.exp2(self._randn([N], device, dp) * self.imgfilter_std)
                gains[:, k] = self._gate(g, 1, (p * self.imgfilter * band).clamp(0, 1), dp)
        # Keep the expected image energy: sum_k energy_k * g_k^2 == 1.
        energy = torch.as_tensor(_BAND_ENERGY, device=device)
        gains = gains / torch.sqrt((gains.square() * energy).sum(dim=1, keepdim=True))
        if bool((gains - 1).abs().amax() < 1e-6):
            return images
        taps = gains @ self.Hz_fbank  # [N, K] per-sample 1-D filter
        K = taps.shape[1]
        # Separable, per-sample filtering as a grouped convolution with reflection padding.
        x = images.reshape(1, N * C, H, W)
        w = taps.repeat_interleave(C, dim=0)  # [N*C, K]
        pad = K // 2
        x = torch.nn.functional.pad(x, [pad, pad, 0, 0], mode='reflect' if W > pad else 'replicate')
        x = conv2d_gradfix.conv2d(input=x, weight=w.reshape(N * C, 1, 1, K), groups=N * C)
        x = torch.nn.functional.pad(x, [0, 0, pad, pad], mode='reflect' if H > pad else 'replicate')
        x = conv2d_gradfix.conv2d(input=x, weight=w.reshape(N * C, 1, K, 1), groups=N * C)
        return x.reshape(N, C, H, W)

    # ------------------------------------------------------------------
    # Corruption: Appendix B, "image-space corruptions".

    def _corrupt(self, images, p, dp):
        N, C, H, W = images.shape
        device = images.device
        if self.noise > 0:
            sigma = self._gate(self._randn([N], device, dp).abs() * self.noise_std, 0, (p * self.noise).clamp(0, 1), dp)
            images = images + torch.randn_like(images) * sigma.reshape(N, 1, 1, 1)
        if self.cutout > 0:
            size = self._gate(torch.full([N], self.cutout_size, device=device), 0, (p * self.cutout).clamp(0, 1), dp)
            centre = self._rand([N, 2], device, dp)  # [N, 2], (x, y) in [0, 1)
            ys = (torch.arange(H, device=device, dtype=torch.float32) + 0.5) / H
            xs = (torch.arange(W, device=device, dtype=torch.float32) + 0.5) / W
            inside_x = (xs[None, :] - centre[:, :1]).abs() < size[:, None] / 2  # [N, W]
            inside_y = (ys[None, :] - centre[:, 1:]).abs() < size[:, None] / 2  # [N, H]
            keep = ~(inside_y[:, :, None] & inside_x[:, None, :])  # [N, H, W]
            images = images * keep[:, None].to(images.dtype)
        return images
