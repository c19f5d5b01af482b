"""tmsnet: connectivity-guided TMS targeting and network analysis.

The public API is one function per job (each computes, writes a
BIDS-Derivatives folder and its report) and the parameter objects they take:

======================  ==========================================================
``tmsnet.target``       personalized DLPFC target(s) from one resting-state scan
``tmsnet.plan``         treatment plan of a target: scalp point, coil, dose, navigator files
``tmsnet.connectome``   region-level connectomes with the targeting cleaning
``tmsnet.compare``      patients vs controls / pre vs post: edge GLM, NBS, network blocks
``tmsnet.propagate``    spread of stimulation on a structural connectome
``tmsnet.tep``          TMS-EEG: cleaning, TEPs, oscillations, synchrony, PCIst
======================  ==========================================================

The science functions behind them (``tmsnet.targeting.workflow.compute_targets``,
``tmsnet.networks``, ``tmsnet.eeg``, ``tmsnet.physics``...) return results in
memory without writing anything. Attributes are imported on first use, so
``import tmsnet`` stays fast.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tmsnet")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

#: Public name -> (module, attribute).
_API = {
    "target": ("tmsnet.jobs.target", "run_target"),
    "plan": ("tmsnet.jobs.plan", "plan"),
    "connectome": ("tmsnet.jobs.connectome", "run_connectomes"),
    "compare": ("tmsnet.jobs.compare", "run_comparison"),
    "propagate": ("tmsnet.jobs.propagate", "run_propagation"),
    "tep": ("tmsnet.jobs.tep", "run_tep"),
    "BoldCleaningParameters": ("tmsnet.fmri.cleaning", "BoldCleaningParameters"),
    "TargetingParameters": ("tmsnet.targeting.workflow", "TargetingParameters"),
    "SeedRegion": ("tmsnet.targeting.regions", "SeedRegion"),
    "SearchRegion": ("tmsnet.targeting.regions", "SearchRegion"),
    "UncertaintyParameters": ("tmsnet.targeting.uncertainty", "UncertaintyParameters"),
    "PlanParameters": ("tmsnet.navigation.plan", "PlanParameters"),
    "DoseParameters": ("tmsnet.physics.dose", "DoseParameters"),
    "ConnectomeParameters": ("tmsnet.networks.parameters", "ConnectomeParameters"),
    "ComparisonParameters": ("tmsnet.networks.parameters", "ComparisonParameters"),
    "PropagationParameters": ("tmsnet.networks.parameters", "PropagationParameters"),
    "CleaningParameters": ("tmsnet.eeg.cleaning", "CleaningParameters"),
    "TepMeasureParameters": ("tmsnet.eeg.workflow", "TepMeasureParameters"),
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    """Import a public attribute on first use (PEP 562)."""
    if name not in _API:
        raise AttributeError(f"module 'tmsnet' has no attribute {name!r}")
    module, attribute = _API[name]
    value = getattr(import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
