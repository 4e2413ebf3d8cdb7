"""StyleGAN2Loss: R1 and path-length regularisers against hand-computed values on tiny stand-in networks."""

import numpy as np
import pytest
import torch

from training.loss import StyleGAN2Loss


class _LinearD(torch.nn.Module):
    """D(x) = sum(w * x) + 0.5 * a * sum(x^2): grad_x D = w + a * x."""

    def __init__(self, shape, a=0.0):
        super().__init__()
        self.w = torch.nn.Parameter(torch.linspace(-1, 1, int(np.prod(shape))).reshape(shape))
        self.a = a

    def forward(self, img, c, update_emas=False):
        return ((self.w * img).sum([1, 2, 3]) + 0.5 * self.a * img.square().sum([1, 2, 3])).unsqueeze(1)


class _LinearG(torch.nn.Module):
    """ws = z repeated over L layers; img[n] = sum_l A_l ws[n, l] reshaped to [C, H, W]."""

    def __init__(self, z_dim=3, num_ws=2, img_shape=(1, 2, 2)):
        super().__init__()
        self.z_dim, self.c_dim, self.num_ws, self.img_shape = z_dim, 0, num_ws, img_shape
        g = torch.Generator().manual_seed(0)
        self.A = torch.nn.Parameter(torch.randn([num_ws, int(np.prod(img_shape)), z_dim], generator=g))
        self.mapping = lambda z, c, update_emas=False: z[:, None, :].repeat(1, num_ws, 1)
        self.synthesis = self._synthesis

    def _synthesis(self, ws, update_emas=False):
        return torch.einsum('lpd,nld->np', self.A, ws).reshape(ws.shape[0], *self.img_shape)


def test_r1_penalty_matches_hand_computation():
    D = _LinearD([1, 2, 2], a=0.5)
    loss = StyleGAN2Loss('cpu', G=None, D=D, r1_gamma=4)
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]], [[[0.0, -1.0], [0.5, 0.0]]]], requires_grad=True)
    logits = D(x, None)
    penalty = loss.r1_penalty(x, logits)
    expected = ((D.w.detach() + 0.5 * x.detach()) ** 2).sum([1, 2, 3])
    torch.testing.assert_close(penalty, expected)


def test_r1_gradient_of_lazy_phase():
    # Dreg backpropagates gain * mean(gamma / 2 * ||w||^2) for D(x) = sum(w x): dL/dw = gain * gamma * w.
    D = _LinearD([1, 2, 2])
    gamma, gain = 3.0, 16.0
    loss = StyleGAN2Loss('cpu', G=None, D=D, r1_gamma=gamma)
    real = torch.randn([4, 1, 2, 2])
    loss.accumulate_gradients('Dreg', real, torch.zeros([4, 0]), None, None, gain=gain, cur_nimg=0)
    torch.testing.assert_close(D.w.grad, gain * gamma * D.w.detach())


def test_path_length_penalty_matches_hand_computation():
    G = _LinearG()
    loss = StyleGAN2Loss('cpu', G=G, D=None, pl_weight=2, pl_decay=0.01)
    z = torch.randn([3, G.z_dim])
    ws = G.mapping(z, None).requires_grad_(True)
    img = G.synthesis(ws)
    torch.manual_seed(123)
    penalty, lengths = loss.path_length_penalty(img, ws)

    torch.manual_seed(123)
    y = (torch.randn_like(img) / np.sqrt(2 * 2)).reshape(3, -1).numpy().astype(np.float64)  # y / sqrt(H * W)
    A = G.A.detach().numpy().astype(np.float64)  # [L, P, D]
    grads = np.einsum('lpd,np->nld', A, y)  # J^T y per layer
    exp_lengths = np.sqrt((grads**2).sum(2).mean(1))
    exp_mean = 0.0 + 0.01 * (exp_lengths.mean() - 0.0)  # EMA from 0 with decay 0.01
    np.testing.assert_allclose(lengths.detach().numpy(), exp_lengths, rtol=1e-5)
    np.testing.assert_allclose(float(loss.pl_mean), exp_mean, rtol=1e-5)
    np.testing.assert_allclose(penalty.detach().numpy(), (exp_lengths - exp_mean) ** 2, rtol=1e-4)


def test_non_saturating_losses_and_phases():
    G = _LinearG(img_shape=(1, 2, 2))
    D = _LinearD([1, 2, 2])
    loss = StyleGAN2Loss('cpu', G=G, D=D, r1_gamma=1)
    z = torch.randn([4, G.z_dim])
    c = torch.zeros([4, 0])
    real = torch.randn([4, 1, 2, 2])
    # Gmain: G's gradient equals that of mean(softplus(-D(G(z)))).
    loss.accumulate_gradients('Gmain', real, c, z, c, gain=1, cur_nimg=0)
    G_grad = G.A.grad.clone()
    G.A.grad = None
    expected = torch.nn.functional.softplus(-D(G.synthesis(G.mapping(z, c)), c)).mean()
    expected.backward()
    torch.testing.assert_close(G_grad, G.A.grad)
    # Dmain: D's gradient equals that of mean(softplus(D(fake))) + mean(softplus(-D(real))).
    D.w.grad = None
    torch.manual_seed(0)
    loss.accumulate_gradients('Dmain', real, c, z, c, gain=1, cur_nimg=0)
    D_grad = D.w.grad.clone()
    D.w.grad = None
    fake = G.synthesis(G.mapping(z, c)).detach()
    (torch.nn.functional.softplus(D(fake, c)).mean() + torch.nn.functional.softplus(-D(real, c)).mean()).backward()
    torch.testing.assert_close(D_grad, D.w.grad)
    with pytest.raises(ValueError, match='phase'):
        loss.accumulate_gradients('Gfoo', real, c, z, c, gain=1, cur_nimg=0)


def test_blur_schedule_and_style_mixing_shapes():
    loss = StyleGAN2Loss('cpu', G=_LinearG(num_ws=4), D=None, style_mixing_prob=1, blur_init_sigma=10, blur_fade_kimg=2)
    assert loss.blur_sigma(0) == 10 and loss.blur_sigma(1000) == 5 and loss.blur_sigma(5000) == 0
    img, ws = loss.run_G(torch.randn([5, 3]), torch.zeros([5, 0]))
    assert img.shape == (5, 1, 2, 2) and ws.shape == (5, 4, 3)
    # With mixing prob 1 every sample switches to a second latent at some layer in [1, L).
    assert all(not torch.equal(ws[i, 0], ws[i, -1]) for i in range(5))
    with pytest.raises(ValueError, match='r1_gamma'):
        StyleGAN2Loss('cpu', G=None, D=None, r1_gamma=-1)
