"""Brian2 engine: equation-defined conductance LIF populations, power-law STDP, the Diehl & Cook network driven
as whole simulations, pruning/quantization through :mod:`bioSNN.device`, and the spike-count readout.

>>> from bioSNN.brian.backend import Backend, backend
>>> from bioSNN.brian.network import DiehlCookConfig, DiehlCookNetwork
>>> with backend(Backend("cpp_standalone", directory="build/dc")) as be:   # the backend is the caller's choice
...     net = DiehlCookNetwork(DiehlCookConfig(n_exc=100), images, be)
...     responses = net.present(order, plastic=True)
"""
