"""GAN losses and regularisers of StyleGAN2/StyleGAN3 training.

- Non-saturating logistic loss (Goodfellow et al. 2014): G minimises softplus(-D(G(z))), D minimises
  softplus(D(G(z))) + softplus(-D(x)).
- R1 regularisation (Mescheder et al. 2018, "Which training methods for GANs do actually converge?"):
  (gamma / 2) * ||grad_x D(x)||^2 on reals, applied lazily
  (Karras et al. 2020, StyleGAN2, arXiv 1912.04958, Sec. 3.1).
- Path-length regularisation (StyleGAN2, Sec. 3.2, Eq. 4): (||J_w^T y||_2 - a)^2 with y ~ N(0, I) / sqrt(H * W)
  and `a` an exponential moving average of the lengths.
- Style mixing regularisation (StyleGAN, Karras et al. 2019, Sec. 3.1): a share of the images uses a second
  latent from a random layer on.
- D-input blur for StyleGAN3-R (Alias-Free GAN, arXiv 2106.12423, appendix on the StyleGAN3-R training
  configuration): reals and fakes are blurred with a Gaussian whose sigma fades from `blur_init_sigma` to 0 over
  `blur_fade_kimg`.
"""

from __future__ import annotations

import numpy as np
import torch

from torch_utils import training_stats
from torch_utils.ops import conv2d_gradfix, upfirdn2d

PHASES = ('Gmain', 'Greg', 'Gboth', 'Dmain', 'Dreg', 'Dboth')


class StyleGAN2Loss:
    """Losses of the StyleGAN2/3 training loop; `accumulate_gradients()` backpropagates one phase.

    Args:
        device: torch.device the networks live on.
        G: generator with `.mapping(z, c, update_emas=)` and `.synthesis(ws, update_emas=)`.
        D: discriminator, `D(img, c, update_emas=)` -> logits [N, 1].
        augment_pipe: optional callable on [N, C, H, W] images (ADA), applied to everything D sees.
        r1_gamma: R1 weight gamma (>= 0).
        style_mixing_prob: probability that a generated image mixes two latents (in [0, 1]).
        pl_weight: path-length regularisation weight (0 disables it).
        pl_batch_shrink: the path-length term uses batch // pl_batch_shrink samples.
        pl_decay: EMA decay of the path-length target `a`.
        pl_no_weight_grad: skip conv weight gradients inside the path-length gradient (as the reference does).
        blur_init_sigma: initial sigma in pixels of the D-input blur (0 disables it).
        blur_fade_kimg: kimg over which the blur sigma fades linearly to 0.

    Raises:
        ValueError: on a negative weight, a probability outside [0, 1] or pl_batch_shrink < 1.
    """

    def __init__(
        self,
        device,
        G,
        D,
        augment_pipe=None,
        r1_gamma=10,
        style_mixing_prob=0,
        pl_weight=0,
        pl_batch_shrink=2,
        pl_decay=0.01,
        pl_no_weight_grad=False,
        blur_init_sigma=0,
        blur_fade_kimg=0,
    ):
        if r1_gamma < 0:
            raise ValueError(f'StyleGAN2Loss(): r1_gamma must be >= 0, got {r1_gamma}')
        if not 0 <= style_mixing_prob <= 1:
            raise ValueError(f'StyleGAN2Loss(): style_mixing_prob must be in [0, 1], got {style_mixing_prob}')
        if pl_weight < 0:
            raise ValueError(f'StyleGAN2Loss(): pl_weight must be >= 0, got {pl_weight}')
        if int(pl_batch_shrink) < 1:
            raise ValueError(f'StyleGAN2Loss(): pl_batch_shrink must be >= 1, got {pl_batch_shrink}')
        self.device = torch.device(device)
        self.G = G
        self.D = D
        self.augment_pipe = augment_pipe
        self.r1_gamma = float(r1_gamma)
        self.style_mixing_prob = float(style_mixing_prob)
        self.pl_weight = float(pl_weight)
        self.pl_batch_shrink = int(pl_batch_shrink)
        self.pl_decay = float(pl_decay)
        self.pl_no_weight_grad = bool(pl_no_weight_grad)
        self.pl_mean = torch.zeros([], device=self.device)  # EMA of path lengths, the target `a` of Eq. 4.
        self.blur_init_sigma = float(blur_init_sigma)
        self.blur_fade_kimg = float(blur_fade_kimg)

    # ------------------------------------------------------------------

    def run_G(self, z, c, update_emas=False):
        """Generates images with style mixing. z [N, z_dim], c [N, c_dim] -> (img [N, C, H, W], ws [N, L, D])."""
        ws = self.G.mapping(z, c, update_emas=update_emas)
        if self.style_mixing_prob > 0:
            with torch.autograd.profiler.record_function('style_mixing'):
                N, L = ws.shape[0], ws.shape[1]
                # Per sample: mix with probability style_mixing_prob, from a crossover layer in [1, L).
                cutoff = torch.randint(1, max(L, 2), [N], device=ws.device)
                use_mix = torch.rand([N], device=ws.device) < self.style_mixing_prob
                cutoff = torch.where(use_mix, cutoff, torch.full_like(cutoff, L))
                ws2 = self.G.mapping(torch.randn_like(z), c, update_emas=False)
                take2 = torch.arange(L, device=ws.device)[None, :] >= cutoff[:, None]  # [N, L]
                ws = torch.where(take2[:, :, None], ws2, ws)
        img = self.G.synthesis(ws, update_emas=update_emas)
        return img, ws

    def run_D(self, img, c, blur_sigma=0, update_emas=False):
        """Blurs (SG3-R), augments (ADA) and scores images. img [N, C, H, W] -> logits [N, 1]."""
        blur_size = int(np.floor(blur_sigma * 3))
        if blur_size > 0:
            with torch.autograd.profiler.record_function('blur'):
                f = torch.arange(-blur_size, blur_size + 1, device=img.device, dtype=torch.float32)
                f = torch.exp(-0.5 * (f / blur_sigma).square())  # Gaussian taps, normalised below.
                img = upfirdn2d.filter2d(img, f / f.sum())
        if self.augment_pipe is not None:
            img = self.augment_pipe(img)
        return self.D(img, c, update_emas=update_emas)

    def blur_sigma(self, cur_nimg):
        """D-input blur sigma in pixels at `cur_nimg` images shown (linear fade, StyleGAN3-R configuration)."""
        if self.blur_fade_kimg <= 0:
            return 0.0
        return max(1 - cur_nimg / (self.blur_fade_kimg * 1e3), 0) * self.blur_init_sigma

    # ------------------------------------------------------------------

    def path_length_penalty(self, gen_img, gen_ws):
        """Path-length penalty per sample (StyleGAN2 Eq. 4) and the updated EMA target; updates `self.pl_mean`.

        Args:
            gen_img: [N, C, H, W] images generated from `gen_ws` (graph kept).
            gen_ws: [N, L, D] the ws that made them (requires grad).

        Returns:
            (penalty [N], pl_lengths [N]): penalty_i = (|J_i^T y_i| - a)^2 with |J^T y| the root of the per-layer
            mean of the squared gradient norms, y ~ N(0, I) / sqrt(H * W), `a` the EMA after this batch.
        """
        H, W = gen_img.shape[2], gen_img.shape[3]
        pl_noise = torch.randn_like(gen_img) / np.sqrt(H * W)
        with (
            torch.autograd.profiler.record_function('pl_grads'),
            conv2d_gradfix.no_weight_gradients(self.pl_no_weight_grad),
        ):
            pl_grads = torch.autograd.grad(
                outputs=[(gen_img * pl_noise).sum()], inputs=[gen_ws], create_graph=True, only_inputs=True
            )[0]
        pl_lengths = pl_grads.square().sum(2).mean(1).sqrt()  # [N]
        pl_mean = self.pl_mean.lerp(pl_lengths.mean(), self.pl_decay)
        self.pl_mean.copy_(pl_mean.detach())
        return (pl_lengths - pl_mean).square(), pl_lengths

    def r1_penalty(self, real_img_tmp, real_logits):
        """R1 penalty per sample: ||grad_x sum(D(x))||^2 over C, H, W (Mescheder et al. 2018). -> [N]."""
        with torch.autograd.profiler.record_function('r1_grads'), conv2d_gradfix.no_weight_gradients():
            r1_grads = torch.autograd.grad(
                outputs=[real_logits.sum()], inputs=[real_img_tmp], create_graph=True, only_inputs=True
            )[0]
        return r1_grads.square().sum([1, 2, 3])

    # ------------------------------------------------------------------

    def accumulate_gradients(self, phase, real_img, real_c, gen_z, gen_c, gain, cur_nimg):
        """Computes the losses of one training phase and backpropagates them (gradients accumulate).

        Args:
            phase: one of 'Gmain', 'Greg', 'Gboth', 'Dmain', 'Dreg', 'Dboth'.
            real_img: [N, C, H, W] float32 reals in [-1, 1].
            real_c: [N, c_dim] float32 labels of the reals.
            gen_z: [N, z_dim] float32 latents; gen_c: [N, c_dim] float32 labels for the fakes.
            gain: factor on the losses (the regularisation interval for lazy phases, divided by the number of
                accumulation rounds).
            cur_nimg: images shown so far (drives the blur fade).

        Raises:
            ValueError: on an unknown phase.
        """
        if phase not in PHASES:
            raise ValueError(f'StyleGAN2Loss.accumulate_gradients(): phase must be one of {PHASES}, got {phase!r}')
        if self.pl_weight == 0:
            phase = {'Greg': 'none', 'Gboth': 'Gmain'}.get(phase, phase)
        if self.r1_gamma == 0:
            phase = {'Dreg': 'none', 'Dboth': 'Dmain'}.get(phase, phase)
        blur_sigma = self.blur_sigma(cur_nimg)

        if phase in ('Gmain', 'Gboth'):
            self._g_main(gen_z, gen_c, gain, blur_sigma)
        if phase in ('Greg', 'Gboth'):
            self._g_pl(gen_z, gen_c, gain)
        loss_Dgen = None
        if phase in ('Dmain', 'Dboth'):
            loss_Dgen = self._d_gen(gen_z, gen_c, gain, blur_sigma)
        if phase in ('Dmain', 'Dreg', 'Dboth'):
            self._d_real(phase, real_img, real_c, gain, blur_sigma, loss_Dgen)

    def _g_main(self, gen_z, gen_c, gain, blur_sigma):
        # G: maximise log D(G(z)) (non-saturating loss).
        with torch.autograd.profiler.record_function('Gmain_forward'):
            gen_img, _gen_ws = self.run_G(gen_z, gen_c)
            gen_logits = self.run_D(gen_img, gen_c, blur_sigma=blur_sigma)
            training_stats.report('Loss/scores/fake', gen_logits)
            training_stats.report('Loss/signs/fake', gen_logits.sign())
            loss_Gmain = torch.nn.functional.softplus(-gen_logits)  # -log(sigmoid(gen_logits))
            training_stats.report('Loss/G/loss', loss_Gmain)
        with torch.autograd.profiler.record_function('Gmain_backward'):
            loss_Gmain.mean().mul(gain).backward()

    def _g_pl(self, gen_z, gen_c, gain):
        # G: path-length regularisation on a shrunk batch.
        with torch.autograd.profiler.record_function('Gpl_forward'):
            batch_size = max(gen_z.shape[0] // self.pl_batch_shrink, 1)
            gen_img, gen_ws = self.run_G(gen_z[:batch_size], gen_c[:batch_size])
            pl_penalty, _pl_lengths = self.path_length_penalty(gen_img, gen_ws)
            training_stats.report('Loss/pl_penalty', pl_penalty)
            loss_Gpl = pl_penalty * self.pl_weight
            training_stats.report('Loss/G/reg', loss_Gpl)
        with torch.autograd.profiler.record_function('Gpl_backward'):
            loss_Gpl.mean().mul(gain).backward()

    def _d_gen(self, gen_z, gen_c, gain, blur_sigma):
        # D: minimise D(G(z)) (fakes); G is frozen in D phases.
        with torch.autograd.profiler.record_function('Dgen_forward'):
            gen_img, _gen_ws = self.run_G(gen_z, gen_c, update_emas=True)
            gen_logits = self.run_D(gen_img.detach(), gen_c, blur_sigma=blur_sigma, update_emas=True)
            training_stats.report('Loss/scores/fake', gen_logits)
            training_stats.report('Loss/signs/fake', gen_logits.sign())
            loss_Dgen = torch.nn.functional.softplus(gen_logits)  # -log(1 - sigmoid(gen_logits))
        with torch.autograd.profiler.record_function('Dgen_backward'):
            loss_Dgen.mean().mul(gain).backward()
        return loss_Dgen.detach()

    def _d_real(self, phase, real_img, real_c, gain, blur_sigma, loss_Dgen=None):
        # D: maximise D(x) on reals and/or apply R1.
        name = {'Dmain': 'Dreal', 'Dreg': 'Dr1', 'Dboth': 'Dreal_Dr1'}[phase]
        do_main = phase in ('Dmain', 'Dboth')
        do_r1 = phase in ('Dreg', 'Dboth') and self.r1_gamma != 0
        with torch.autograd.profiler.record_function(name + '_forward'):
            real_img_tmp = real_img.detach().requires_grad_(do_r1)
            real_logits = self.run_D(real_img_tmp, real_c, blur_sigma=blur_sigma)
            training_stats.report('Loss/scores/real', real_logits)
            training_stats.report('Loss/signs/real', real_logits.sign())

            loss_Dreal = torch.zeros_like(real_logits)
            if do_main:
                loss_Dreal = torch.nn.functional.softplus(-real_logits)  # -log(sigmoid(real_logits))
                if loss_Dgen is not None and loss_Dgen.shape == loss_Dreal.shape:
                    training_stats.report('Loss/D/loss', loss_Dgen + loss_Dreal.detach())
                else:
                    training_stats.report('Loss/D/loss', loss_Dreal.detach())

            loss_Dr1 = torch.zeros_like(real_logits)
            if do_r1:
                r1_penalty = self.r1_penalty(real_img_tmp, real_logits)
                loss_Dr1 = (r1_penalty * (self.r1_gamma / 2)).unsqueeze(1)
                training_stats.report('Loss/r1_penalty', r1_penalty)
                training_stats.report('Loss/D/reg', loss_Dr1)
        with torch.autograd.profiler.record_function(name + '_backward'):
            (loss_Dreal + loss_Dr1).mean().mul(gain).backward()
