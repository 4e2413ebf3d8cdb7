"""Network architectures and training code.

`training.networks_stylegan2` (StyleGAN2 generator and the discriminator used by every preset) and
`training.networks_stylegan3` (Alias-Free generator) keep the module, class, attribute, parameter and buffer names of
the reference implementation, so network pickles load in either code base. Importing this package is cheap: the
submodules are imported on demand.
"""
