"""bioSNN: energy-efficient, low-latency spiking neural networks.

Two engines (Brian2 for biologically grounded STDP networks, PyTorch for gradient-trained SNNs), one memristive
device model (:mod:`bioSNN.device`) and one weight format (:mod:`bioSNN.bundles`). Datasets live in
:mod:`bioSNN.data`, encoders in :mod:`bioSNN.encoding`.
"""

__version__ = "0.1.0"
