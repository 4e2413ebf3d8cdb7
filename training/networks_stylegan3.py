"""StyleGAN3 (Alias-Free GAN) generator (Karras et al. 2021, "Alias-Free Generative Adversarial Networks",
arXiv 2106.12423, Sec. 3 and Appendices D-F). The discriminator is the StyleGAN2 one (`networks_stylegan2`).

Written from the paper. Class names, constructor keyword arguments, attribute, submodule, parameter and buffer names
and forward signatures follow the reference implementation so that `state_dict`s and network pickles are
interchangeable (docs/compatibility.md sections 1-3, 5). The source of this module is embedded into network pickles and
executed by the reference loader: it may import only numpy, scipy.signal, scipy.optimize, torch and
`torch_utils.{misc, persistence}` / `torch_utils.ops.{conv2d_gradfix, filtered_lrelu, bias_act}`, call those with
reference signatures, and must stay valid on older Pythons (no 3.10+ syntax outside annotations).

Shape letters: N batch, C channels, H/W height/width, I/O in/out channels, L num_ws, D w_dim, K filter taps.
"""

from __future__ import annotations

import numpy as np
import scipy.signal
import torch

from torch_utils import misc, persistence
from torch_utils.ops import bias_act, conv2d_gradfix, filtered_lrelu

# ----------------------------------------------------------------------------


@misc.profiled_function
def modulated_conv2d(
    x,  # Input activations: [N, I, H, W], float16/float32.
    w,  # Convolution weights: [O, I, kh, kw].
    s,  # Styles: [N, I].
    demodulate=True,  # Apply weight demodulation?
    padding=0,  # Padding: int or [padH, padW].
    input_gain=None,  # Optional scale factors for the input channels: [], [I], or [N, I].
):
    """Modulated convolution as one grouped convolution (StyleGAN2 Eq. 1-3; Alias-Free GAN Sec. 3.2 / App. F).

    Before modulating, the weights are scaled to unit RMS per output channel and the styles to unit RMS overall;
    with demodulation both scales cancel (up to eps) and they only keep float16 in range. `input_gain` divides the
    input by its running magnitude (Alias-Free GAN App. F: "magnitude EMA" replaces the noise/normalisation).

    Returns:
        Tensor [N, O, H + 2*padding - kh + 1, W + 2*padding - kw + 1] in the dtype of `x`.
    """
    with misc.suppress_tracer_warnings():  # this value will be treated as a constant
        batch_size = int(x.shape[0])
    out_channels, in_channels, kh, kw = w.shape
    misc.assert_shape(w, [out_channels, in_channels, kh, kw])  # [O, I, kh, kw]
    misc.assert_shape(x, [batch_size, in_channels, None, None])  # [N, I, H, W]
    misc.assert_shape(s, [batch_size, in_channels])  # [N, I]

    # Pre-normalise the inputs to keep float16 in range.
    if demodulate:
        w = w * w.square().mean([1, 2, 3], keepdim=True).rsqrt()
        s = s * s.square().mean().rsqrt()

    # Modulate (Eq. 1).
    w = w.unsqueeze(0)  # [1, O, I, kh, kw]
    w = w * s.unsqueeze(1).unsqueeze(3).unsqueeze(4)  # [N, O, I, kh, kw]

    # Demodulate (Eq. 3).
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()  # [N, O]
        w = w * dcoefs.unsqueeze(2).unsqueeze(3).unsqueeze(4)  # [N, O, I, kh, kw]

    # Apply the input gain.
    if input_gain is not None:
        input_gain = input_gain.expand(batch_size, in_channels)  # [N, I]
        w = w * input_gain.unsqueeze(1).unsqueeze(3).unsqueeze(4)  # [N, O, I, kh, kw]

    # One grouped convolution for the whole batch.
    x = x.reshape(1, -1, *x.shape[2:])  # [1, N*I, H, W]
    w = w.reshape(-1, in_channels, kh, kw)  # [N*O, I, kh, kw]
    x = conv2d_gradfix.conv2d(input=x, weight=w.to(x.dtype), padding=padding, groups=batch_size)
    x = x.reshape(batch_size, -1, *x.shape[2:])  # [N, O, H', W']
    return x


# ----------------------------------------------------------------------------


@persistence.persistent_class
class FullyConnectedLayer(torch.nn.Module):
    """Dense layer with equalized learning rate: weights N(0, weight_init^2 / lr^2) scaled at run time by
    `lr_multiplier / sqrt(in_features)`; biases initialised to `bias_init / lr` and scaled by `lr_multiplier`.

    Forward: x [N, in_features] -> [N, out_features] (dtype of x).
    """

    def __init__(
        self,
        in_features,  # Number of input features.
        out_features,  # Number of output features.
        activation='linear',  # Activation function: 'relu', 'lrelu', etc.
        bias=True,  # Apply additive bias before the activation function?
        lr_multiplier=1,  # Learning rate multiplier.
        weight_init=1,  # Initial standard deviation of the weight tensor.
        bias_init=0,  # Initial value of the additive bias (scalar or [out_features]).
    ):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.activation = activation
        self.weight = torch.nn.Parameter(torch.randn([out_features, in_features]) * (weight_init / lr_multiplier))
        bias_init = np.broadcast_to(np.asarray(bias_init, dtype=np.float32), [out_features])
        self.bias = (
            torch.nn.Parameter(torch.as_tensor(bias_init / lr_multiplier, dtype=torch.float32)) if bias else None
        )
        self.weight_gain = lr_multiplier / np.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x):
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == 'linear' and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        x = x.matmul(w.t())
        return bias_act.bias_act(x, b, act=self.activation)

    def extra_repr(self):
        return f'in_features={self.in_features:d}, out_features={self.out_features:d}, activation={self.activation:s}'


# ----------------------------------------------------------------------------


@persistence.persistent_class
class MappingNetwork(torch.nn.Module):
    """Mapping network z (+ class embedding) -> ws (Alias-Free GAN App. F: 2 layers by default).

    Forward: z [N, z_dim] float32, c [N, c_dim] float32 -> ws [N, num_ws, w_dim] float32; truncation lerps the
    first `truncation_cutoff` ws (all when None) toward `w_avg` by `truncation_psi`.
    """

    def __init__(
        self,
        z_dim,  # Input latent (Z) dimensionality.
        c_dim,  # Conditioning label (C) dimensionality, 0 = no labels.
        w_dim,  # Intermediate latent (W) dimensionality.
        num_ws,  # Number of intermediate latents to output.
        num_layers=2,  # Number of mapping layers.
        lr_multiplier=0.01,  # Learning rate multiplier for the mapping layers.
        w_avg_beta=0.998,  # Decay for tracking the moving average of W during training.
    ):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.num_ws = num_ws
        self.num_layers = num_layers
        self.w_avg_beta = w_avg_beta

        # Construct layers.
        self.embed = FullyConnectedLayer(self.c_dim, self.w_dim) if self.c_dim > 0 else None
        features = [self.z_dim + (self.w_dim if self.c_dim > 0 else 0)] + [self.w_dim] * self.num_layers
        for idx, in_features, out_features in zip(range(num_layers), features[:-1], features[1:]):
            layer = FullyConnectedLayer(in_features, out_features, activation='lrelu', lr_multiplier=lr_multiplier)
            setattr(self, f'fc{idx}', layer)
        self.register_buffer('w_avg', torch.zeros([w_dim]))

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        misc.assert_shape(z, [None, self.z_dim])
        if truncation_cutoff is None:
            truncation_cutoff = self.num_ws

        # Embed, normalise and concatenate the inputs.
        x = z.to(torch.float32)
        x = x * (x.square().mean(1, keepdim=True) + 1e-8).rsqrt()
        if self.c_dim > 0:
            misc.assert_shape(c, [None, self.c_dim])
            y = self.embed(c.to(torch.float32))
            y = y * (y.square().mean(1, keepdim=True) + 1e-8).rsqrt()
            x = torch.cat([x, y], dim=1)

        # Execute layers.
        for idx in range(self.num_layers):
            x = getattr(self, f'fc{idx}')(x)

        # Update the moving average of W (training only).
        if update_emas:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))

        # Broadcast and apply the truncation trick.
        x = x.unsqueeze(1).repeat([1, self.num_ws, 1])  # [N, L, D]
        if truncation_psi != 1:
            x[:, :truncation_cutoff] = self.w_avg.lerp(x[:, :truncation_cutoff], truncation_psi)
        return x

    def extra_repr(self):
        return f'z_dim={self.z_dim:d}, c_dim={self.c_dim:d}, w_dim={self.w_dim:d}, num_ws={self.num_ws:d}'


# ----------------------------------------------------------------------------


@persistence.persistent_class
class SynthesisInput(torch.nn.Module):
    """Fourier-feature input (Alias-Free GAN Sec. 3.2 and App. F).

    `channels` sinusoids with random frequencies inside a disc of radius `bandwidth` and random phases, sampled on a
    `size` grid whose central `sampling_rate` samples span one unit. The first ws predicts a rotation (r_c, r_s) and
    a translation (t_x, t_y) applied to the features, after the user's `transform` buffer (output coordinates ->
    input coordinates, identity by default). The features are mixed by a learned [C, C] matrix.

    Forward: w [N, D] -> x [N, channels, size[1], size[0]] float32.
    """

    def __init__(
        self,
        w_dim,  # Intermediate latent (W) dimensionality.
        channels,  # Number of output channels.
        size,  # Output spatial size: int or [width, height].
        sampling_rate,  # Output sampling rate.
        bandwidth,  # Output bandwidth.
    ):
        super().__init__()
        self.w_dim = w_dim
        self.channels = channels
        self.size = np.broadcast_to(np.asarray(size), [2])
        self.sampling_rate = sampling_rate
        self.bandwidth = bandwidth

        # Random frequencies: directions uniform, radius exp(-r^2/4) for r ~ |N(0, I)| (in (0, 1]), times bandwidth.
        freqs = torch.randn([self.channels, 2])
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs /= radii * radii.square().exp().pow(0.25)
        freqs *= bandwidth
        phases = torch.rand([self.channels]) - 0.5

        # Learned parameters; the affine starts at the identity transform (r_c, r_s, t_x, t_y) = (1, 0, 0, 0).
        self.weight = torch.nn.Parameter(torch.randn([self.channels, self.channels]))
        self.affine = FullyConnectedLayer(w_dim, 4, weight_init=0, bias_init=[1, 0, 0, 0])
        self.register_buffer('transform', torch.eye(3, 3))  # user-specified inverse transform wrt. output image
        self.register_buffer('freqs', freqs)
        self.register_buffer('phases', phases)

    def forward(self, w):
        # Introduce the batch dimension.
        transforms = self.transform.unsqueeze(0)  # [N, row, col]
        freqs = self.freqs.unsqueeze(0)  # [N, C, xy]
        phases = self.phases.unsqueeze(0)  # [N, C]

        # Predict the rotation and translation from w and normalise the rotation.
        t = self.affine(w)  # t = (r_c, r_s, t_x, t_y)
        t = t / t[:, :2].norm(dim=1, keepdim=True)

        # Build the per-sample inverse transforms: rotation, then translation, after the user's transform.
        m_r = torch.eye(3, device=w.device).unsqueeze(0).repeat([w.shape[0], 1, 1])  # inverse rotation
        m_r[:, 0, 0] = t[:, 0]
        m_r[:, 0, 1] = -t[:, 1]
        m_r[:, 1, 0] = t[:, 1]
        m_r[:, 1, 1] = t[:, 0]
        m_t = torch.eye(3, device=w.device).unsqueeze(0).repeat([w.shape[0], 1, 1])  # inverse translation
        m_t[:, 0, 2] = -t[:, 2]
        m_t[:, 1, 2] = -t[:, 3]
        transforms = m_r @ m_t @ transforms  # [N, 3, 3]

        # Transform the frequencies and phases: sin(2 pi (f.(A g + b) + p)) = sin(2 pi ((f A).g + (f.b + p))).
        phases = phases + (freqs @ transforms[:, :2, 2:]).squeeze(2)
        freqs = freqs @ transforms[:, :2, :2]

        # Fade out frequencies that would alias (only with scaling transforms).
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)

        # Sampling grid: pixel centres, the central `sampling_rate` samples span [-0.5, 0.5].
        theta = torch.eye(2, 3, device=w.device)
        theta[0, 0] = 0.5 * self.size[0] / self.sampling_rate
        theta[1, 1] = 0.5 * self.size[1] / self.sampling_rate
        grids = torch.nn.functional.affine_grid(
            theta.unsqueeze(0), [1, 1, self.size[1], self.size[0]], align_corners=False
        )  # [1, H, W, xy]

        # Fourier features.
        x = (grids.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)  # [N, H, W, C]
        x = x + phases.unsqueeze(1).unsqueeze(2)
        x = torch.sin(x * (np.pi * 2))
        x = x * amplitudes.unsqueeze(1).unsqueeze(2)

        # Learned channel mixing.
        weight = self.weight / np.sqrt(self.channels)
        x = x @ weight.t()

        x = x.permute(0, 3, 1, 2)  # [N, C, H, W]
        misc.assert_shape(x, [w.shape[0], self.channels, int(self.size[1]), int(self.size[0])])
        return x

    def extra_repr(self):
        return '\n'.join(
            [
                f'w_dim={self.w_dim:d}, channels={self.channels:d}, size={[int(v) for v in self.size]},',
                f'sampling_rate={self.sampling_rate:g}, bandwidth={self.bandwidth:g}',
            ]
        )


# ----------------------------------------------------------------------------


@persistence.persistent_class
class SynthesisLayer(torch.nn.Module):
    """Alias-free layer (Alias-Free GAN Sec. 3.2, Fig. 4b): modulated conv -> filtered leaky ReLU.

    The nonlinearity runs at `tmp_sampling_rate` (= max(in, out) rate x `lrelu_upsampling`): upsample with a Kaiser
    low-pass at the input cutoff, leaky ReLU, low-pass at the output cutoff (radial for -R unless critically
    sampled) and downsample. The input is divided by sqrt(magnitude_ema), the running mean square of the input
    (App. F). The ToRGB layer (`is_torgb`) is a 1x1 modulated conv without demodulation, bias and clamp.

    Forward: x [N, in_channels, in_size[1], in_size[0]], w [N, D] -> [N, out_channels, out_size[1], out_size[0]].
    """

    def __init__(
        self,
        w_dim,  # Intermediate latent (W) dimensionality.
        is_torgb,  # Is this the final ToRGB layer?
        is_critically_sampled,  # Does this layer use critical sampling?
        use_fp16,  # Does this layer use FP16 (CUDA only)?
        # Input & output specifications.
        in_channels,  # Number of input channels.
        out_channels,  # Number of output channels.
        in_size,  # Input spatial size: int or [width, height].
        out_size,  # Output spatial size: int or [width, height].
        in_sampling_rate,  # Input sampling rate (s).
        out_sampling_rate,  # Output sampling rate (s).
        in_cutoff,  # Input cutoff frequency (f_c).
        out_cutoff,  # Output cutoff frequency (f_c).
        in_half_width,  # Input transition band half-width (f_h).
        out_half_width,  # Output transition band half-width (f_h).
        # Hyperparameters.
        conv_kernel=3,  # Convolution kernel size. Ignored for the final ToRGB layer.
        filter_size=6,  # Low-pass filter size relative to the lower resolution when up/downsampling.
        lrelu_upsampling=2,  # Relative sampling rate for the leaky ReLU. Ignored for the final ToRGB layer.
        use_radial_filters=False,  # Use radially symmetric downsampling filter? Ignored for critically sampled layers.
        conv_clamp=256,  # Clamp the output to [-X, +X], None = disable clamping.
        magnitude_ema_beta=0.999,  # Decay rate for the moving average of input magnitudes.
    ):
        super().__init__()
        self.w_dim = w_dim
        self.is_torgb = is_torgb
        self.is_critically_sampled = is_critically_sampled
        self.use_fp16 = use_fp16
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.in_size = np.broadcast_to(np.asarray(in_size), [2])
        self.out_size = np.broadcast_to(np.asarray(out_size), [2])
        self.in_sampling_rate = in_sampling_rate
        self.out_sampling_rate = out_sampling_rate
        self.tmp_sampling_rate = max(in_sampling_rate, out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)
        self.in_cutoff = in_cutoff
        self.out_cutoff = out_cutoff
        self.in_half_width = in_half_width
        self.out_half_width = out_half_width
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp = conv_clamp
        self.magnitude_ema_beta = magnitude_ema_beta

        # Setup parameters and buffers.
        self.affine = FullyConnectedLayer(self.w_dim, self.in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(
            torch.randn([self.out_channels, self.in_channels, self.conv_kernel, self.conv_kernel])
        )
        self.bias = torch.nn.Parameter(torch.zeros([self.out_channels]))
        self.register_buffer('magnitude_ema', torch.ones([]))

        # Upsampling filter: Kaiser low-pass at the input cutoff, designed at the temporary rate.
        self.up_factor = int(np.rint(self.tmp_sampling_rate / self.in_sampling_rate))
        assert self.in_sampling_rate * self.up_factor == self.tmp_sampling_rate
        self.up_taps = filter_size * self.up_factor if self.up_factor > 1 and not self.is_torgb else 1
        self.register_buffer(
            'up_filter',
            self.design_lowpass_filter(
                numtaps=self.up_taps, cutoff=self.in_cutoff, width=self.in_half_width * 2, fs=self.tmp_sampling_rate
            ),
        )

        # Downsampling filter: Kaiser low-pass at the output cutoff (radially symmetric for -R).
        self.down_factor = int(np.rint(self.tmp_sampling_rate / self.out_sampling_rate))
        assert self.out_sampling_rate * self.down_factor == self.tmp_sampling_rate
        self.down_taps = filter_size * self.down_factor if self.down_factor > 1 and not self.is_torgb else 1
        self.down_radial = use_radial_filters and not self.is_critically_sampled
        self.register_buffer(
            'down_filter',
            self.design_lowpass_filter(
                numtaps=self.down_taps,
                cutoff=self.out_cutoff,
                width=self.out_half_width * 2,
                fs=self.tmp_sampling_rate,
                radial=self.down_radial,
            ),
        )

        # Padding of the upsampled signal so that the output has exactly `out_size` samples: the 'full' convolution
        # grows the input by conv_kernel - 1, the two FIR filters shrink it by (taps - 1) each.
        pad_total = (self.out_size - 1) * self.down_factor + 1  # desired output size before downsampling
        pad_total -= (self.in_size + self.conv_kernel - 1) * self.up_factor  # input size after upsampling
        pad_total += self.up_taps + self.down_taps - 2  # size reduction caused by the filters
        pad_lo = (pad_total + self.up_factor) // 2  # shift the sample grid by half an (upsampled) pixel
        pad_hi = pad_total - pad_lo
        self.padding = [int(pad_lo[0]), int(pad_hi[0]), int(pad_lo[1]), int(pad_hi[1])]

    def forward(self, x, w, noise_mode='random', force_fp32=False, update_emas=False):
        if noise_mode not in ('random', 'const', 'none'):  # accepted for interface parity; SG3 has no noise
            raise ValueError(
                f"SynthesisLayer.forward(): noise_mode must be 'random', 'const' or 'none', got {noise_mode!r}"
            )
        misc.assert_shape(x, [None, self.in_channels, int(self.in_size[1]), int(self.in_size[0])])
        misc.assert_shape(w, [x.shape[0], self.w_dim])

        # Track the input magnitude (training only).
        if update_emas:
            with torch.autograd.profiler.record_function('update_magnitude_ema'):
                magnitude_cur = x.detach().to(torch.float32).square().mean()
                self.magnitude_ema.copy_(magnitude_cur.lerp(self.magnitude_ema, self.magnitude_ema_beta))
        input_gain = self.magnitude_ema.rsqrt()

        # Execute the affine layer.
        styles = self.affine(w)
        if self.is_torgb:
            weight_gain = 1 / np.sqrt(self.in_channels * (self.conv_kernel**2))
            styles = styles * weight_gain

        # Execute the modulated conv2d ('full' convolution: padding conv_kernel - 1). float16 only on CUDA.
        dtype = torch.float16 if (self.use_fp16 and not force_fp32 and x.device.type == 'cuda') else torch.float32
        x = modulated_conv2d(
            x=x.to(dtype),
            w=self.weight,
            s=styles,
            padding=self.conv_kernel - 1,
            demodulate=(not self.is_torgb),
            input_gain=input_gain,
        )

        # Execute bias, filtered leaky ReLU, and clamping.
        gain = 1 if self.is_torgb else np.sqrt(2)
        slope = 1 if self.is_torgb else 0.2
        x = filtered_lrelu.filtered_lrelu(
            x=x,
            fu=self.up_filter,
            fd=self.down_filter,
            b=self.bias.to(x.dtype),
            up=self.up_factor,
            down=self.down_factor,
            padding=self.padding,
            gain=gain,
            slope=slope,
            clamp=self.conv_clamp,
        )

        # Ensure correct shape and dtype.
        misc.assert_shape(x, [None, self.out_channels, int(self.out_size[1]), int(self.out_size[0])])
        assert x.dtype == dtype
        return x

    @staticmethod
    def design_lowpass_filter(numtaps, cutoff, width, fs, radial=False):
        """Designs a Kaiser-windowed low-pass FIR filter (Alias-Free GAN Sec. 3.2 and App. C).

        Args:
            numtaps: Number of taps K; 1 means "no filter" and returns None.
            cutoff: Cutoff frequency f_c (same units as `fs`).
            width: Transition band width 2 f_h; it sets the Kaiser beta through the attenuation formula.
            fs: Sampling rate.
            radial: Design a radially symmetric 2-D filter (jinc times a separable Kaiser window) instead of a
                1-D (separable) one.

        Returns:
            None, a float32 tensor [K] (DC gain 1) or, when `radial`, [K, K] (sum 1).
        """
        assert numtaps >= 1

        # Identity filter.
        if numtaps == 1:
            return None

        # Separable Kaiser low-pass filter.
        if not radial:
            f = scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs)
            return torch.as_tensor(f, dtype=torch.float32)

        # Radially symmetric jinc-based filter: the ideal disc low-pass J1(2 pi f_c r) / r, windowed.
        x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
        r = np.hypot(*np.meshgrid(x, x))
        f = scipy.special.j1(2 * cutoff * (np.pi * r)) / (np.pi * r)
        beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
        w = np.kaiser(numtaps, beta)
        f *= np.outer(w, w)
        f /= np.sum(f)
        return torch.as_tensor(f, dtype=torch.float32)

    def extra_repr(self):
        return '\n'.join(
            [
                f'w_dim={self.w_dim:d}, is_torgb={self.is_torgb},',
                f'is_critically_sampled={self.is_critically_sampled}, use_fp16={self.use_fp16},',
                f'in_sampling_rate={self.in_sampling_rate:g}, out_sampling_rate={self.out_sampling_rate:g},',
                f'in_cutoff={self.in_cutoff:g}, out_cutoff={self.out_cutoff:g},',
                f'in_half_width={self.in_half_width:g}, out_half_width={self.out_half_width:g},',
                f'in_size={[int(v) for v in self.in_size]}, out_size={[int(v) for v in self.out_size]},',
                f'in_channels={self.in_channels:d}, out_channels={self.out_channels:d}',
            ]
        )


# ----------------------------------------------------------------------------


@persistence.persistent_class
class SynthesisNetwork(torch.nn.Module):
    """Synthesis network: Fourier input + `num_layers` alias-free layers + ToRGB (Alias-Free GAN Sec. 3.2, Fig. 4).

    Layer specifications (Sec. 3.2, App. F, Fig. 4a "flexible layer specifications"): for layer i of N = `num_layers`,
    e_i = min(i / (N - num_critical), 1); cutoff f_c = first_cutoff * (img_res/2 / first_cutoff)^e_i; stopband
    f_t = first_stopband * (img_res/2 * last_stopband_rel / first_stopband)^e_i; sampling rate s = smallest power of
    two >= 2 f_t (at most img_res); half-width f_h = max(f_t, s/2) - f_c; size = s + 2 margin (img_res for the last
    two); channels = min(channel_base / 2 / f_c, channel_max). Layers are children `L<i>_<size>_<channels>`.

    Forward: ws [N, num_ws, D] -> img [N, img_channels, img_resolution, img_resolution] float32, about [-1, 1].
    """

    def __init__(
        self,
        w_dim,  # Intermediate latent (W) dimensionality.
        img_resolution,  # Output image resolution.
        img_channels,  # Number of color channels.
        channel_base=32768,  # Overall multiplier for the number of channels.
        channel_max=512,  # Maximum number of channels in any layer.
        num_layers=14,  # Total number of layers, excluding Fourier features and ToRGB.
        num_critical=2,  # Number of critically sampled layers at the end.
        first_cutoff=2,  # Cutoff frequency of the first layer (f_{c,0}).
        first_stopband=2**2.1,  # Minimum stopband of the first layer (f_{t,0}).
        last_stopband_rel=2**0.3,  # Minimum stopband of the last layer, expressed relative to the cutoff.
        margin_size=10,  # Number of additional pixels outside the image.
        output_scale=0.25,  # Scale factor for the output image.
        num_fp16_res=4,  # Use FP16 for the N highest resolutions.
        **layer_kwargs,  # Arguments for SynthesisLayer.
    ):
        super().__init__()
        self.w_dim = w_dim
        self.num_ws = num_layers + 2
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.num_layers = num_layers
        self.num_critical = num_critical
        self.margin_size = margin_size
        self.output_scale = output_scale
        self.num_fp16_res = num_fp16_res

        # Geometric progression of layer cutoffs and min. stopbands.
        last_cutoff = self.img_resolution / 2  # f_{c,N}
        last_stopband = last_cutoff * last_stopband_rel  # f_{t,N}
        exponents = np.minimum(np.arange(self.num_layers + 1) / (self.num_layers - self.num_critical), 1)
        cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents  # f_c[i]
        stopbands = first_stopband * (last_stopband / first_stopband) ** exponents  # f_t[i]

        # Compute remaining layer parameters.
        sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, self.img_resolution))))  # s[i]
        half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs  # f_h[i]
        sizes = sampling_rates + self.margin_size * 2
        sizes[-2:] = self.img_resolution
        channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
        channels[-1] = self.img_channels

        # Construct layers.
        self.input = SynthesisInput(
            w_dim=self.w_dim,
            channels=int(channels[0]),
            size=int(sizes[0]),
            sampling_rate=sampling_rates[0],
            bandwidth=cutoffs[0],
        )
        self.layer_names = []
        for idx in range(self.num_layers + 1):
            prev = max(idx - 1, 0)
            is_torgb = idx == self.num_layers
            is_critically_sampled = idx >= self.num_layers - self.num_critical
            use_fp16 = sampling_rates[idx] * (2**self.num_fp16_res) > self.img_resolution
            layer = SynthesisLayer(
                w_dim=self.w_dim,
                is_torgb=is_torgb,
                is_critically_sampled=is_critically_sampled,
                use_fp16=use_fp16,
                in_channels=int(channels[prev]),
                out_channels=int(channels[idx]),
                in_size=int(sizes[prev]),
                out_size=int(sizes[idx]),
                in_sampling_rate=int(sampling_rates[prev]),
                out_sampling_rate=int(sampling_rates[idx]),
                in_cutoff=cutoffs[prev],
                out_cutoff=cutoffs[idx],
                in_half_width=half_widths[prev],
                out_half_width=half_widths[idx],
                **layer_kwargs,
            )
            name = f'L{idx}_{layer.out_size[0]}_{layer.out_channels}'
            setattr(self, name, layer)
            self.layer_names.append(name)

    def forward(self, ws, **layer_kwargs):
        misc.assert_shape(ws, [None, self.num_ws, self.w_dim])
        ws = ws.to(torch.float32).unbind(dim=1)

        # Execute layers: ws[0] drives the input transform, ws[i + 1] the i-th layer.
        x = self.input(ws[0])
        for name, w in zip(self.layer_names, ws[1:]):
            x = getattr(self, name)(x, w, **layer_kwargs)
        if self.output_scale != 1:
            x = x * self.output_scale

        # Ensure correct shape and dtype.
        misc.assert_shape(x, [None, self.img_channels, self.img_resolution, self.img_resolution])
        x = x.to(torch.float32)
        return x

    def extra_repr(self):
        return '\n'.join(
            [
                f'w_dim={self.w_dim:d}, num_ws={self.num_ws:d},',
                f'img_resolution={self.img_resolution:d}, img_channels={self.img_channels:d},',
                f'num_layers={self.num_layers:d}, num_critical={self.num_critical:d},',
                f'margin_size={self.margin_size:d}, num_fp16_res={self.num_fp16_res:d}',
            ]
        )


# ----------------------------------------------------------------------------


@persistence.persistent_class
class Generator(torch.nn.Module):
    """StyleGAN3 generator: `G(z, c) = synthesis(mapping(z, c))` (docs/compatibility.md section 3 interface).

    Forward: z [N, z_dim] float32 (standard normal), c [N, c_dim] float32 (one-hot, width 0 when unconditional)
    -> img [N, img_channels, img_resolution, img_resolution] float32, about [-1, 1].
    `synthesis_kwargs`: noise_mode (accepted, unused), force_fp32, update_emas.
    """

    def __init__(
        self,
        z_dim,  # Input latent (Z) dimensionality.
        c_dim,  # Conditioning label (C) dimensionality.
        w_dim,  # Intermediate latent (W) dimensionality.
        img_resolution,  # Output resolution.
        img_channels,  # Number of output color channels.
        mapping_kwargs=None,  # Arguments for MappingNetwork.
        **synthesis_kwargs,  # Arguments for SynthesisNetwork.
    ):
        super().__init__()
        self.z_dim = z_dim
        self.c_dim = c_dim
        self.w_dim = w_dim
        self.img_resolution = img_resolution
        self.img_channels = img_channels
        self.synthesis = SynthesisNetwork(
            w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels, **synthesis_kwargs
        )
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **(mapping_kwargs or {})
        )

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False, **synthesis_kwargs):
        ws = self.mapping(
            z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, update_emas=update_emas
        )
        return self.synthesis(ws, update_emas=update_emas, **synthesis_kwargs)


# ----------------------------------------------------------------------------
