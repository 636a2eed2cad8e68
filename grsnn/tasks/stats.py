"""Deprecated alias of :mod:`grsnn.reports.firing_stats`, kept so that existing imports of
``grsnn.tasks.stats`` keep working; import from :mod:`grsnn.reports.firing_stats`."""
from __future__ import annotations

from ..reports.firing_stats import (ENERGY_AC_PJ, ENERGY_MAC_PJ, circuit_stats,
                                    delivered_spikes, format_circuit_stats, operation_counts,
                                    source_reach, spiking_gnn_stats)

__all__ = ["ENERGY_AC_PJ", "ENERGY_MAC_PJ", "circuit_stats", "delivered_spikes",
           "format_circuit_stats", "operation_counts", "source_reach", "spiking_gnn_stats"]
