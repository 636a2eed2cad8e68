"""Spiking modules: the delayed spiking message-passing layer and the GRSNN reasoner."""
from .conv import SpikingDelayConv
from .grsnn import GRSNN

__all__ = ["SpikingDelayConv", "GRSNN"]
