"""Spiking modules: the delayed spiking message-passing layer, the GRSNN reasoner and the
drop-in SpikingGNN."""
from .conv import SpikingDelayConv
from .grsnn import GRSNN
from .spiking_gnn import SpikingGNN

__all__ = ["SpikingDelayConv", "GRSNN", "SpikingGNN"]
