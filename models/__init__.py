"""Network zoo (installed as ``bioSNN.models``): one module per thesis network, built only from ``bioSNN`` parts."""
